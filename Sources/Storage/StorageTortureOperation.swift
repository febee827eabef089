import Raft

/// One write of the storage crash test, in a form that fits on one line.
///
/// The child (`shoal internal-storage-torture`) prints `begin <line>` before
/// and `ack <line>` after each write to a ``SQLiteRaftStorage``; the parent
/// (StorageTests) replays the acknowledged ones into a ``MemoryRaftStorage``
/// after SIGKILLing the child, and requires the reopened file to equal it
/// (or it plus the one write in flight). Entry and snapshot contents derive
/// from index and term, so a line is enough to rebuild a write exactly.
///
/// Lives in Storage, not in a test, because both sides must agree on it byte
/// for byte.
public enum StorageTortureOperation: Sendable, Equatable, CustomStringConvertible {
    /// `save` of `count` entries from `firstIndex` (truncating any stored
    /// suffix from there) at `term`, with hard state (term, vote 1, commit).
    case append(firstIndex: UInt64, count: Int, term: UInt64, commit: UInt64, sync: Bool)
    /// `compact(to:)` a snapshot at `index`, whose entry has `term`.
    case compact(index: UInt64, term: UInt64)
    /// `save` of an installed snapshot at (index, term), with hard state (term, vote 1, commit).
    case install(index: UInt64, term: UInt64, commit: UInt64)

    /// The member every hard state votes for.
    public static let vote: NodeID = 1
    /// The configuration of every snapshot and configuration entry.
    public static let configuration = Configuration(voters: [1, 2, 3], learners: [4])
    /// Every `configurationEvery`-th index holds a configuration entry.
    public static let configurationEvery: UInt64 = 17
    /// Snapshot payload size, big enough to span several SQLite pages.
    public static let snapshotSizeBytes = 6_000

    /// The entry the crash test stores at (index, term).
    public static func entry(index: UInt64, term: UInt64) -> Entry {
        if index % configurationEvery == 0 {
            return Entry(term: term, index: index, kind: .configuration, data: configuration.encoded())
        }
        // 0 to 299 bytes, different for every (index, term).
        let count = Int((index &* 31 &+ term &* 7) % 300)
        return Entry(term: term, index: index, kind: .normal, data: bytes(seed: index &* 1_000_003 &+ term, count: count))
    }

    /// The snapshot the crash test stores at (index, term).
    public static func snapshot(index: UInt64, term: UInt64) -> Snapshot {
        Snapshot(
            metadata: SnapshotMetadata(index: index, term: term, configuration: configuration),
            data: bytes(seed: index ^ (term << 40), count: snapshotSizeBytes))
    }

    private static func bytes(seed: UInt64, count: Int) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        var result: [UInt8] = []
        result.reserveCapacity(count)
        while result.count < count {
            var word = generator.next()
            for _ in 0..<8 where result.count < count {
                result.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return result
    }

    /// Performs this write on `storage`.
    public func apply(to storage: RaftStorage) throws {
        switch self {
        case .append(let firstIndex, let count, let term, let commit, let sync):
            let entries = (0..<UInt64(count)).map { Self.entry(index: firstIndex + $0, term: term) }
            try storage.save(
                hardState: HardState(term: term, vote: Self.vote, commit: commit), entries: entries, snapshot: nil,
                sync: sync)
        case .compact(let index, let term):
            try storage.compact(to: Self.snapshot(index: index, term: term))
        case .install(let index, let term, let commit):
            try storage.save(
                hardState: HardState(term: term, vote: Self.vote, commit: commit), entries: [],
                snapshot: Self.snapshot(index: index, term: term), sync: true)
        }
    }

    /// The one-line form, parsed by ``init(line:)``.
    public var description: String {
        switch self {
        case .append(let firstIndex, let count, let term, let commit, let sync):
            return "append \(firstIndex) \(count) \(term) \(commit) \(sync ? 1 : 0)"
        case .compact(let index, let term):
            return "compact \(index) \(term)"
        case .install(let index, let term, let commit):
            return "install \(index) \(term) \(commit)"
        }
    }

    /// Parses ``description``; nil for anything else.
    public init?<S: StringProtocol>(line: S) {
        let words = line.split(separator: " ")
        guard let name = words.first else { return nil }
        let numbers = words.dropFirst().compactMap { UInt64($0) }
        guard numbers.count == words.count - 1 else { return nil }
        switch (name, numbers.count) {
        case ("append", 5) where numbers[4] <= 1 && numbers[1] <= UInt64(Int.max):
            self = .append(
                firstIndex: numbers[0], count: Int(numbers[1]), term: numbers[2], commit: numbers[3], sync: numbers[4] == 1)
        case ("compact", 2):
            self = .compact(index: numbers[0], term: numbers[1])
        case ("install", 3):
            self = .install(index: numbers[0], term: numbers[1], commit: numbers[2])
        default:
            return nil
        }
    }
}

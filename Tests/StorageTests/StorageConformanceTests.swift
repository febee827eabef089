import TestSupport
import Foundation
import Raft
import Storage
import Testing

/// SQLiteRaftStorage must behave exactly as the reference MemoryRaftStorage:
/// one seeded sequence of random writes goes to both, and every load() must
/// agree (including after reopening the file).
@Suite struct StorageConformanceTests {
    static let writesPerSeed = 400

    /// The writes Raft makes, with the edge cases MemoryRaftStorage defines:
    /// batches that start below the snapshot, snapshots with and without
    /// entries, compactions behind, inside and beyond the log, truncations,
    /// hard-state-only saves, synced and not.
    struct WriteGenerator {
        var random: SeededGenerator

        mutating func next(after state: PersistentState) -> (describe: String, apply: (RaftStorage) throws -> Void) {
            let snapshotIndex = state.snapshot?.metadata.index ?? 0
            let last = state.entries.last?.index ?? snapshotIndex
            let maxTerm = max(state.hardState.term, state.entries.last?.term ?? 0, state.snapshot?.metadata.term ?? 0)
            let commit = state.hardState.commit
            let sync = Bool.random(using: &random)
            let term = maxTerm + UInt64.random(in: 0...1, using: &random)
            let hardState = Bool.random(using: &random)
                ? HardState(term: term, vote: UInt64.random(in: 0...5, using: &random), commit: commit) : nil

            switch UInt64.random(in: 0..<100, using: &random) {
            case 0..<45:
                // Append or overwrite a suffix; never below what is committed
                // (unless a hard state lowers nothing: commit stays within the log).
                let low = max(commit + 1, snapshotIndex > 3 ? snapshotIndex - 3 : 1)
                let first = low <= last + 1 ? UInt64.random(in: low...(last + 1), using: &random) : last + 1
                let count = UInt64.random(in: 1...6, using: &random)
                let entries = (first..<(first + count)).map { index in
                    Entry(
                        term: term, index: index, kind: index % 11 == 0 ? .configuration : .normal,
                        data: index % 11 == 0
                            ? Configuration(voters: [1, index]).encoded()
                            : (0..<(index % 5)).map { UInt8(truncatingIfNeeded: index &+ $0 &+ term) })
                }
                return ("append \(first)+\(count) term \(term) sync \(sync)", {
                    try $0.save(hardState: hardState, entries: entries, snapshot: nil, sync: sync)
                })
            case 45..<60:
                // Only the hard state moves (commit forward within the log).
                let newCommit = commit < last ? UInt64.random(in: commit...last, using: &random) : commit
                let moved = HardState(term: term, vote: UInt64.random(in: 0...5, using: &random), commit: newCommit)
                return ("hard state \(moved) sync \(sync)", {
                    try $0.save(hardState: moved, entries: [], snapshot: nil, sync: sync)
                })
            case 60..<80:
                // Compaction: behind the snapshot (ignored), inside the log, or past its end.
                let index = UInt64.random(in: (snapshotIndex > 2 ? snapshotIndex - 2 : 0)...(last + 3), using: &random)
                let termAt = state.entries.first(where: { $0.index == index })?.term ?? maxTerm
                let snapshot = Self.snapshot(index: index, term: termAt)
                return ("compact \(index)", { try $0.compact(to: snapshot) })
            default:
                // Install a snapshot, sometimes with the entries that follow it,
                // sometimes with a batch that starts below it.
                let index = UInt64.random(in: commit...(last + 10), using: &random)
                let snapshot = Self.snapshot(index: index, term: term)
                var entries: [Entry] = []
                if Bool.random(using: &random) {
                    let first = index > 2 ? index - UInt64.random(in: 0...2, using: &random) : index + 1
                    entries = (first...(index + 3)).map { Entry(term: term, index: $0, data: [UInt8(truncatingIfNeeded: $0)]) }
                }
                let installed = HardState(term: term, vote: 1, commit: index)
                return ("install \(index) with \(entries.count) entries", {
                    try $0.save(hardState: installed, entries: entries, snapshot: snapshot, sync: true)
                })
            }
        }

        static func snapshot(index: UInt64, term: UInt64) -> Snapshot {
            Snapshot(
                metadata: SnapshotMetadata(index: index, term: term, configuration: Configuration(voters: [1, 2, 3])),
                data: Array("state at \(index)".utf8))
        }
    }

    @Test(arguments: [1, 2, 3, 0xDEAD_BEEF] as [UInt64])
    func sameWritesSameState(seed: UInt64) throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("raft.db")
        let memory = MemoryRaftStorage()
        var sqlite = try SQLiteRaftStorage(path: path)
        var generator = WriteGenerator(random: SeededGenerator(seed: seed))
        var history: [String] = []
        for step in 0..<Self.writesPerSeed {
            let write = generator.next(after: try memory.load())
            history.append(write.describe)
            try write.apply(memory)
            try write.apply(sqlite)
            if step % 50 == 49 { sqlite = try SQLiteRaftStorage(path: path) }
            let expected = try memory.load()
            let actual = try sqlite.load()
            guard actual == expected else {
                Issue.record("""
                    seed \(seed), write \(step) (\(write.describe)): SQLite and memory storage differ
                    memory: hard state \(expected.hardState), snapshot \(String(describing: expected.snapshot?.metadata)), entries \(expected.entries.map { "\($0.index)@\($0.term)" })
                    sqlite: hard state \(actual.hardState), snapshot \(String(describing: actual.snapshot?.metadata)), entries \(actual.entries.map { "\($0.index)@\($0.term)" })
                    last writes: \(history.suffix(5))
                    """)
                return
            }
        }
        // The sequence must have reached the interesting shapes, or it proves little.
        #expect(history.contains { $0.hasPrefix("install") && !$0.hasSuffix("with 0 entries") })
        #expect(history.contains { $0.hasPrefix("compact") })
    }
}

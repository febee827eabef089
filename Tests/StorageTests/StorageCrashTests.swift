import TestSupport
import Foundation
import Raft
import Storage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// "Nothing Raft acknowledges may be lost across a process crash."
///
/// A child process (`shoal internal-storage-torture`) writes to one
/// SQLiteRaftStorage file and prints `ack <write>` after each write returns.
/// The test SIGKILLs it at a seeded random moment, reopens the file and
/// requires it to hold exactly the acknowledged writes, or those plus the one
/// write that was in flight (atomic: all of it or none), and to load without
/// corruption. Then the next child resumes from that file, so truncations,
/// compactions and snapshot installs get killed too.
@Suite struct StorageCrashTests {
    static let killCycles = 16
    static let defaultSeed: UInt64 = 0x5EED_0001

    @Test func killedWriterLosesNothingItAcknowledged() throws {
        let seed = ProcessInfo.processInfo.environment["SHOAL_STORAGE_CRASH_SEED"].flatMap { UInt64($0) } ?? Self.defaultSeed
        // The seed fixes the writes and when to kill; the exact moment also depends on timing.
        let replay = "seed \(seed): rerun with SHOAL_STORAGE_CRASH_SEED=\(seed) swift test --filter StorageCrashTests"
        let shoal = try ShoalBinary.url()
        let directory = try TemporaryDirectory()
        let path = directory.file("raft.db")
        var random = SeededGenerator(seed: seed)
        // What the acknowledged writes add up to, built from the ack lines alone.
        let model = MemoryRaftStorage()
        var killedBeforeCommit = 0
        var killedAfterCommitBeforeAck = 0
        var acknowledgedKinds: [String: Int] = [:]

        for cycle in 0..<Self.killCycles {
            let child = Process()
            child.executableURL = shoal
            child.arguments = ["internal-storage-torture", path, String(random.next())]
            let output = Pipe()
            let errors = Pipe()
            child.standardOutput = output
            child.standardError = errors
            try child.run()

            var reader = LineReader(output.fileHandleForReading)
            var lines: [String] = []
            let acksBeforeKill = Int.random(in: 1...150, using: &random)
            var acks = 0
            while acks < acksBeforeKill, let line = reader.next() {
                lines.append(line)
                if line.hasPrefix("ack ") { acks += 1 }
            }
            let pauseMicroseconds = UInt32.random(in: 0...2_000, using: &random)
            if pauseMicroseconds > 0 { usleep(pauseMicroseconds) }
            if child.isRunning { kill(child.processIdentifier, SIGKILL) }
            child.waitUntilExit()
            // Everything the child wrote before it died is still in the pipe.
            while let line = reader.next() { lines.append(line) }
            let childErrors = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            guard child.terminationReason == .uncaughtSignal && child.terminationStatus == SIGKILL else {
                Issue.record("cycle \(cycle): the child stopped by itself (status \(child.terminationStatus)) before it was killed: \(childErrors); \(replay)")
                return
            }

            // The child must have resumed from exactly the acknowledged state.
            let expectedLastIndex = Self.lastIndex(of: try model.load())
            guard lines.first == "ready \(expectedLastIndex)" else {
                Issue.record("cycle \(cycle): child started with '\(lines.first ?? "nothing")', expected 'ready \(expectedLastIndex)'; \(replay)")
                return
            }
            var inFlight: StorageTortureOperation?
            for line in lines.dropFirst() {
                let words = line.split(separator: " ", maxSplits: 1)
                guard words.count == 2, let operation = StorageTortureOperation(line: words[1]) else {
                    Issue.record("cycle \(cycle): unreadable line from the child: '\(line)'; \(replay)")
                    return
                }
                if words[0] == "begin" {
                    inFlight = operation
                } else if words[0] == "ack" && inFlight == operation {
                    try operation.apply(to: model)
                    inFlight = nil
                    acknowledgedKinds[String(operation.description.prefix { $0 != " " }), default: 0] += 1
                } else {
                    Issue.record("cycle \(cycle): '\(line)' does not follow 'begin \(String(describing: inFlight))'; \(replay)")
                    return
                }
            }

            let acknowledged = try model.load()
            let reopened: PersistentState
            do {
                reopened = try SQLiteRaftStorage(path: path).load()
            } catch {
                Issue.record("cycle \(cycle): the file does not load after SIGKILL: \(error); \(replay)")
                return
            }
            if reopened == acknowledged {
                if inFlight != nil { killedBeforeCommit += 1 }
                continue
            }
            if let inFlight {
                let withInFlight = MemoryRaftStorage(acknowledged)
                try inFlight.apply(to: withInFlight)
                if try reopened == withInFlight.load() {
                    // Committed, killed before it could say so: also correct.
                    try inFlight.apply(to: model)
                    killedAfterCommitBeforeAck += 1
                    continue
                }
            }
            Issue.record("""
                cycle \(cycle): after SIGKILL the file differs from the acknowledged writes \
                (in flight: \(inFlight.map { "\($0)" } ?? "none")); \(replay)
                acknowledged: \(Self.summary(acknowledged))
                on disk:      \(Self.summary(reopened))
                """)
            return
        }
        print("storage crash test: \(Self.killCycles) kills, \(killedBeforeCommit) before a write committed, "
            + "\(killedAfterCommitBeforeAck) after commit but before its ack; acknowledged writes: \(acknowledgedKinds.sorted { $0.key < $1.key })")
        // Every kind of write must have been acknowledged and so checked across kills.
        #expect(acknowledgedKinds["append", default: 0] > 0)
        #expect(acknowledgedKinds["compact", default: 0] > 0)
        #expect(acknowledgedKinds["install", default: 0] > 0)
    }

    static func lastIndex(of state: PersistentState) -> UInt64 {
        state.entries.last?.index ?? state.snapshot?.metadata.index ?? 0
    }

    static func summary(_ state: PersistentState) -> String {
        let entries = state.entries.isEmpty ? "none" : "\(state.entries.first!.index)...\(state.entries.last!.index)"
        return "hard state \(state.hardState), snapshot \(state.snapshot.map { "\($0.metadata.index)@\($0.metadata.term)" } ?? "none"), entries \(entries)"
    }
}

/// Lines from a pipe, as the child writes them.
struct LineReader {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var atEnd = false

    init(_ handle: FileHandle) { self.handle = handle }

    /// The next complete line, blocking until it arrives; nil at end of file.
    mutating func next() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            if atEnd { return nil }  // A partial last line means the child died mid-write: drop it.
            let data = handle.availableData
            if data.isEmpty { atEnd = true } else { buffer.append(contentsOf: data) }
        }
    }
}

import Foundation
import Raft
import Storage
import Testing

@Suite struct RaftStorageWriterTests {
    /// In-memory storage whose first save waits for `release()`, so that
    /// later writes queue up behind it; records each save's entry indexes.
    final class GatedStorage: RaftStorage, @unchecked Sendable {
        let inner = MemoryRaftStorage()
        private let lock = NSLock()
        private let gate = DispatchSemaphore(value: 0)
        private let entered = DispatchSemaphore(value: 0)
        private var firstSave = true
        private(set) var saves: [[UInt64]] = []
        var failure: Error?

        func load() throws -> PersistentState { try inner.load() }
        func compact(to snapshot: Snapshot) throws { try inner.compact(to: snapshot) }

        func save(hardState: HardState?, entries: [Entry], snapshot: Snapshot?, sync: Bool) throws {
            let waits = lock.withLock { () -> Bool in
                defer { firstSave = false }
                return firstSave
            }
            if waits {
                entered.signal()
                gate.wait()
            }
            if let failure { throw failure }
            lock.withLock { saves.append(entries.map(\.index)) }
            try inner.save(hardState: hardState, entries: entries, snapshot: snapshot, sync: sync)
        }

        func waitUntilFirstSaveStarts() { entered.wait() }
        func release() { gate.signal() }
        var recordedSaves: [[UInt64]] { lock.withLock { saves } }
    }

    final class Reports: @unchecked Sendable {
        private let lock = NSLock()
        private var durable: [RaftStorageWriter.DurableEntries] = []
        func add(_ more: [RaftStorageWriter.DurableEntries]) { lock.withLock { durable += more } }
        var all: [RaftStorageWriter.DurableEntries] { lock.withLock { durable } }
    }

    static func ready(_ indexes: ClosedRange<UInt64>, term: UInt64, commit: UInt64) -> Ready {
        Ready(
            hardState: HardState(term: term, vote: 1, commit: commit),
            entries: indexes.map { Entry(term: term, index: $0, data: Array("e\($0)".utf8)) }, mustSync: true,
            canPersistAfterAdvance: true)
    }

    struct Refused: Error {}

    @Test func writesLandInOrderAndQueuedOnesShareOneSave() throws {
        let storage = GatedStorage()
        let reports = Reports()
        let writer = RaftStorageWriter(storage: storage, name: "test-writer") { reports.add($0) }
        try writer.submit(Self.ready(1...2, term: 1, commit: 0))
        storage.waitUntilFirstSaveStarts()
        try writer.submit(Self.ready(3...3, term: 1, commit: 2))
        try writer.submit(Ready(hardState: HardState(term: 1, vote: 1, commit: 3), canPersistAfterAdvance: true))
        try writer.submit(Self.ready(4...6, term: 1, commit: 3))
        storage.release()
        let state = try writer.withStorage { try $0.load() }
        writer.stop()
        #expect(storage.recordedSaves == [[1, 2], [3, 4, 5, 6]], "the three writes queued behind the first are one save")
        #expect(state.entries.map(\.index) == [1, 2, 3, 4, 5, 6])
        #expect(state.hardState == HardState(term: 1, vote: 1, commit: 3))
        #expect(reports.all == [.init(index: 2, term: 1), .init(index: 3, term: 1), .init(index: 6, term: 1)])
    }

    @Test func aWriteThatReplacesEntriesIsNotFoldedIntoTheOneBefore() throws {
        let storage = GatedStorage()
        let writer = RaftStorageWriter(storage: storage, name: "test-writer") { _ in }
        try writer.submit(Self.ready(1...1, term: 1, commit: 0))
        storage.waitUntilFirstSaveStarts()
        try writer.submit(Self.ready(2...4, term: 1, commit: 1))
        try writer.submit(Self.ready(3...3, term: 2, commit: 1))
        storage.release()
        let state = try writer.withStorage { try $0.load() }
        writer.stop()
        #expect(storage.recordedSaves == [[1], [2, 3, 4], [3]])
        #expect(state.entries.map { [$0.index, $0.term] } == [[1, 1], [2, 1], [3, 2]])
    }

    @Test func aFailedWriteStopsTheWriterAndIsReportedToTheShell() throws {
        let storage = GatedStorage()
        storage.failure = Refused()
        let reports = Reports()
        let writer = RaftStorageWriter(storage: storage, name: "test-writer") { reports.add($0) }
        try writer.submit(Self.ready(1...1, term: 1, commit: 0))
        storage.release()
        #expect(throws: Refused.self) { try writer.withStorage { _ in } }
        #expect(throws: Refused.self) { try writer.submit(Self.ready(2...2, term: 1, commit: 0)) }
        #expect(reports.all.isEmpty, "nothing was durable")
        writer.stop()
    }
}

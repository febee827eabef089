import Foundation
import Raft

/// A thread that persists a leader's Readies while the shell's loop goes
/// on: the leader writes its own entries in parallel with replicating them
/// and keeps counting its followers' acknowledgements meanwhile (Raft
/// dissertation §10.2.1; see ``Ready/canPersistAfterAdvance``).
///
/// Writes land in the order they were submitted. Writes that queue up while
/// one runs are saved together in one transaction, so a leader whose disk
/// lags pays one fsync for several Readies. Each write whose entries are
/// durable is reported through `onDurable`, in order, from the writer's
/// thread; the shell hands those to ``RaftNode/persisted(through:term:)``.
///
/// The shell uses this object and nothing else to reach the storage while it
/// runs: ``withStorage(_:)`` runs a synchronous save or a compaction on the
/// caller's thread once every queued write is durable.
public final class RaftStorageWriter: @unchecked Sendable {
    /// The end of one durable write's entries.
    public struct DurableEntries: Sendable, Equatable {
        public var index: UInt64
        public var term: UInt64

        public init(index: UInt64, term: UInt64) {
            self.index = index
            self.term = term
        }
    }

    private struct Write {
        var hardState: HardState?
        var entries: [Entry]
        var sync: Bool
    }

    private let storage: RaftStorage
    private let onDurable: @Sendable ([DurableEntries]) -> Void
    private let condition = NSCondition()
    private var queue: [Write] = []
    private var writing = false
    private var stopping = false
    private var failure: Error?
    private let finished = DispatchSemaphore(value: 0)

    /// Starts the writer's thread. `onDurable` runs on it after each
    /// transaction, with the writes it made durable that held entries.
    public init(storage: RaftStorage, name: String, onDurable: @escaping @Sendable ([DurableEntries]) -> Void) {
        self.storage = storage
        self.onDurable = onDurable
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Queues the durable part of `ready` after every write queued before it.
    /// Throws the error of an earlier write that failed: the member must stop,
    /// since Raft cannot go on from a write it does not know the fate of.
    public func submit(_ ready: Ready) throws {
        if ready.hardState == nil && ready.entries.isEmpty && ready.snapshot == nil { return }
        precondition(ready.snapshot == nil, "a snapshot is never written in parallel (Ready.canPersistAfterAdvance)")
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw failure }
        queue.append(Write(hardState: ready.hardState, entries: ready.entries, sync: ready.mustSync))
        // A new commit index alone waits for the next write (or withStorage):
        // waking the thread for it would cost a hand-over and save nothing.
        if !ready.entries.isEmpty || ready.mustSync { condition.broadcast() }
    }

    /// Waits until every queued write is durable, then runs `body` with the
    /// storage on the calling thread (a Ready that must persist before its
    /// messages leave, a compaction). The caller must not submit meanwhile.
    public func withStorage<T>(_ body: (RaftStorage) throws -> T) throws -> T {
        condition.lock()
        condition.broadcast()
        while (writing || !queue.isEmpty) && failure == nil { condition.wait() }
        let failure = self.failure
        condition.unlock()
        if let failure { throw failure }
        return try body(storage)
    }

    /// Finishes the queued writes and ends the thread.
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        finished.wait()
    }

    private func run() {
        defer { finished.signal() }
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty || failure != nil {
                condition.unlock()
                return
            }
            let writes = queue
            queue.removeAll(keepingCapacity: true)
            writing = true
            condition.unlock()

            var durable: [DurableEntries] = []
            var outcome: Error?
            do {
                for batch in Self.coalesce(writes) {
                    try storage.save(hardState: batch.hardState, entries: batch.entries, snapshot: nil, sync: batch.sync)
                }
                for write in writes {
                    if let last = write.entries.last { durable.append(DurableEntries(index: last.index, term: last.term)) }
                }
            } catch {
                outcome = error
            }
            if !durable.isEmpty { onDurable(durable) }

            condition.lock()
            writing = false
            if let outcome { failure = outcome }
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Folds consecutive writes into one save: entries that continue the
    /// previous ones are appended, and the newest hard state wins. A write
    /// that would replace entries (a new leader's) starts a new save.
    private static func coalesce(_ writes: [Write]) -> [Write] {
        var batches: [Write] = []
        for write in writes {
            if var last = batches.last,
               last.entries.isEmpty || write.entries.isEmpty || write.entries[0].index == last.entries[last.entries.count - 1].index + 1 {
                last.entries += write.entries
                last.hardState = write.hardState ?? last.hardState
                last.sync = last.sync || write.sync
                batches[batches.count - 1] = last
            } else {
                batches.append(write)
            }
        }
        return batches
    }
}

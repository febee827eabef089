import Foundation
import Raft
import Storage

/// Three members, each on its own thread with its own storage, as three
/// processes would be: the leader's and the followers' disk writes overlap.
///
/// With `leaderWritesInParallel`, each member's storage sits behind a
/// ``RaftStorageWriter``: the leader hands its own entries to it and goes
/// on counting its followers' acknowledgements (Raft dissertation §10.2.1),
/// so a commit waits for the two fastest of three writes, not for the
/// leader's; followers still persist before they acknowledge.
final class ThreadedRaftCluster: @unchecked Sendable {
    private final class Member: @unchecked Sendable {
        var node: RaftNode
        let storage: RaftStorage
        /// Set when the leader writes in parallel; then the only path to `storage`.
        var writer: RaftStorageWriter?
        let condition = NSCondition()
        var inbox: [Message] = []
        /// Parallel writes the writer reported durable, for the node.
        var durable: [RaftStorageWriter.DurableEntries] = []
        var stopping = false
        let finished = DispatchSemaphore(value: 0)
        var failure: Error?

        init(node: RaftNode, storage: RaftStorage) {
            self.node = node
            self.storage = storage
        }
    }

    private let members: [Member]
    private var pool: ProposerPool
    private var leaderPosition = -1
    private let leaderWritesInParallel: Bool

    init(storages: [RaftStorage], pool: ProposerPool, leaderWritesInParallel: Bool) {
        let voters = (1...UInt64(storages.count)).map { $0 }
        members = zip(voters, storages).map { id, storage in
            Member(node: RaftNode.bootstrap(options: RaftOptions(id: id, seed: 1), voters: voters), storage: storage)
        }
        self.pool = pool
        self.leaderWritesInParallel = leaderWritesInParallel
    }

    /// Elects a leader on the calling thread, then runs every member on its
    /// own thread for `seconds` and returns the proposer pool with its figures.
    func run(seconds: Double) throws -> ProposerPool {
        try electLeader()
        if leaderWritesInParallel {
            for member in members {
                member.writer = RaftStorageWriter(storage: member.storage, name: "raft-writer-\(member.node.id)") { durable in
                    member.condition.lock()
                    member.durable += durable
                    member.condition.signal()
                    member.condition.unlock()
                }
            }
        }
        for position in members.indices {
            let thread = Thread { [self] in self.serve(position) }
            thread.stackSize = 1 << 20
            thread.start()
        }
        Thread.sleep(forTimeInterval: 0.2)
        members[leaderPosition].condition.lock()
        pool.measuring = true
        members[leaderPosition].condition.signal()
        members[leaderPosition].condition.unlock()
        Thread.sleep(forTimeInterval: seconds)
        members[leaderPosition].condition.lock()
        pool.measuring = false
        members[leaderPosition].condition.unlock()
        for member in members {
            member.condition.lock()
            member.stopping = true
            member.condition.signal()
            member.condition.unlock()
        }
        for member in members {
            member.finished.wait()
            member.writer?.stop()
            if let failure = member.failure { throw failure }
        }
        return pool
    }

    private func electLeader() throws {
        for _ in 0..<10_000 {
            for member in members { member.node.tick() }
            for _ in 0..<4 {
                for member in members where member.node.hasReady {
                    let ready = member.node.ready()
                    try member.storage.save(ready)
                    for message in ready.messagesBeforePersist + ready.messages {
                        members[Int(message.to) - 1].inbox.append(message)
                    }
                    member.node.advance(ready)
                }
                for member in members {
                    let mail = member.inbox
                    member.inbox.removeAll()
                    for message in mail { member.node.step(message) }
                }
            }
            if let leader = members.firstIndex(where: { $0.node.role == .leader }) {
                leaderPosition = leader
                return
            }
        }
        throw BenchmarkError(description: "no leader was elected")
    }

    /// Hands `messages` to their members: one lock and one wake-up per
    /// member, however many messages it gets. A wake-up is the dearest part
    /// of a hand-over (a futex call, and an inter-processor interrupt when
    /// the member sleeps on another core), so a round pays one per member.
    private func deliver(_ messages: [Message]) {
        for (position, member) in members.enumerated() {
            let id = NodeID(position + 1)
            guard messages.contains(where: { $0.to == id }) else { continue }
            member.condition.lock()
            for message in messages where message.to == id { member.inbox.append(message) }
            member.condition.signal()
            member.condition.unlock()
        }
    }

    private func serve(_ position: Int) {
        let member = members[position]
        let isLeader = position == leaderPosition
        defer { member.finished.signal() }
        do {
            while true {
                member.condition.lock()
                while member.inbox.isEmpty && member.durable.isEmpty && !member.stopping && !member.node.hasReady
                    && !(isLeader && pool.measuring && pool.canPropose) {
                    member.condition.wait()
                }
                if member.stopping {
                    member.condition.unlock()
                    return
                }
                let mail = member.inbox
                member.inbox.removeAll(keepingCapacity: true)
                for durable in member.durable { member.node.persisted(through: durable.index, term: durable.term) }
                member.durable.removeAll(keepingCapacity: true)
                for message in mail { member.node.step(message) }
                if isLeader && pool.measuring { pool.fill(&member.node) }
                member.condition.unlock()

                // Messages that may wait for the next Ready's: see below.
                var outgoing: [Message] = []
                while member.node.hasReady {
                    let ready = member.node.ready()
                    outgoing += ready.messagesBeforePersist
                    // A Ready with nothing to persist (on the leader: a new
                    // commit index, whose append carries no entries) keeps its
                    // messages for the next Ready, which usually holds the next
                    // batch for the same followers: one hand-over instead of
                    // two. Raft tolerates any delay; they leave before this
                    // thread waits.
                    if ready.mustSync || !ready.entries.isEmpty || ready.snapshot != nil {
                        deliver(outgoing)
                        outgoing.removeAll(keepingCapacity: true)
                    }
                    let inParallel = member.writer != nil && ready.canPersistAfterAdvance
                    if inParallel {
                        try member.writer!.submit(ready)
                    } else if let writer = member.writer {
                        try writer.withStorage { try $0.save(ready) }
                    } else {
                        try member.storage.save(ready)
                    }
                    outgoing += ready.messages
                    if !outgoing.isEmpty && !isLeader {
                        deliver(outgoing)
                        outgoing.removeAll(keepingCapacity: true)
                    }
                    member.node.advance(ready, entriesDurable: !inParallel)
                    if isLeader {
                        // Refill at once so the next batch is persisted in the
                        // next Ready instead of one Ready later.
                        member.condition.lock()
                        pool.applied(ready.committedEntries)
                        if pool.measuring { pool.fill(&member.node) }
                        member.condition.unlock()
                    }
                }
                deliver(outgoing)
            }
        } catch {
            member.failure = error
        }
    }
}

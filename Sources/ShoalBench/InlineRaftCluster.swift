import Raft

/// Three members driven by one thread: every Ready is carried out in turn
/// and messages are handed over directly. Measures the Raft core itself.
struct InlineRaftCluster {
    private var nodes: [RaftNode]
    private let storages: [RaftStorage]
    private var inboxes: [[Message]]

    init(storages: [RaftStorage]) {
        let voters = (1...UInt64(storages.count)).map { $0 }
        nodes = voters.map { RaftNode.bootstrap(options: RaftOptions(id: $0, seed: 1), voters: voters) }
        self.storages = storages
        inboxes = Array(repeating: [], count: storages.count)
    }

    /// Ticks until a leader is elected; returns its position.
    mutating func electLeader(pool: inout ProposerPool) throws -> Int {
        for _ in 0..<10_000 {
            for position in nodes.indices { nodes[position].tick() }
            try pump(pool: &pool, leader: nil)
            if let leader = nodes.firstIndex(where: { $0.role == .leader }) {
                for _ in 0..<10 { try pump(pool: &pool, leader: leader) }
                return leader
            }
        }
        throw BenchmarkError(description: "no leader was elected")
    }

    mutating func run(pool: inout ProposerPool, leader: Int, seconds: Double) throws {
        let deadline = MonotonicClock.nanoseconds + UInt64(seconds * 1e9)
        pool.measuring = true
        while MonotonicClock.nanoseconds < deadline {
            pool.fill(&nodes[leader])
            try pump(pool: &pool, leader: leader)
        }
        pool.measuring = false
    }

    /// One round: each member carries out its Ready, then receives its mail.
    private mutating func pump(pool: inout ProposerPool, leader: Int?) throws {
        for position in nodes.indices where nodes[position].hasReady {
            let ready = nodes[position].ready()
            for message in ready.messagesBeforePersist { inboxes[Int(message.to) - 1].append(message) }
            try storages[position].save(ready)
            for message in ready.messages { inboxes[Int(message.to) - 1].append(message) }
            if position == leader { pool.applied(ready.committedEntries) }
            nodes[position].advance(ready)
        }
        for position in nodes.indices where !inboxes[position].isEmpty {
            let mail = inboxes[position]
            inboxes[position].removeAll(keepingCapacity: true)
            for message in mail { nodes[position].step(message) }
        }
    }
}

import Raft

/// Keeps `concurrency` proposals outstanding at the leader, like that many
/// clients each waiting for its write to commit before sending the next.
struct ProposerPool {
    let concurrency: Int
    let payload: [UInt8]
    private var startedAt: [UInt64: UInt64] = [:]
    private(set) var latencies = LatencyRecorder()
    private(set) var committed = 0
    var measuring = false

    init(concurrency: Int, payloadBytes: Int) {
        self.concurrency = concurrency
        payload = [UInt8](repeating: 0xab, count: payloadBytes)
    }

    var canPropose: Bool { startedAt.count < concurrency }

    mutating func fill(_ leader: inout RaftNode) {
        let now = MonotonicClock.nanoseconds
        while startedAt.count < concurrency {
            guard let index = try? leader.propose(payload) else { return }
            startedAt[index] = now
        }
    }

    mutating func applied(_ entries: [Entry]) {
        guard !entries.isEmpty else { return }
        let now = MonotonicClock.nanoseconds
        for entry in entries {
            guard let start = startedAt.removeValue(forKey: entry.index) else { continue }
            if measuring {
                committed += 1
                latencies.record(now - start)
            }
        }
    }
}

import Raft

/// A client of the cluster API: one call at a time. A call refused for sure
/// (not the leader, member down, its entry overwritten) is retried on
/// another member; a call whose attempt times out ends with an unknown
/// outcome — retrying it could apply it twice, which compare-and-set makes
/// harmless but which no single history entry could describe.
struct ClusterClient {
    /// Client ids start at 1; 0 is the liveness probe.
    let id: UInt64
    var nextSequence: UInt64 = 1
    var leaderHint: NodeID = 0
    /// The newest version this client saw of each service, for its next
    /// compare-and-set update.
    var knownVersions: [UInt64: UInt64] = [:]
    var operation: InFlight?

    struct InFlight {
        var record: ClusterOperation
        var attempt: UInt64 = 0
        var target: NodeID = 0
    }

    init(id: UInt64) { self.id = id }
}

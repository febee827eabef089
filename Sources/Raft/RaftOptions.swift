/// How one member behaves. Limits carry their unit in their name.
public struct RaftOptions: Sendable {
    /// This member's id; never 0.
    public var id: NodeID
    /// Ticks without hearing from a leader before a follower campaigns. The
    /// actual timeout is drawn from [electionTimeoutTicks, 2 × electionTimeoutTicks)
    /// by the seeded generator (Raft §5.2).
    public var electionTimeoutTicks: Int = 10
    /// Ticks between a leader's heartbeats; well below the election timeout.
    public var heartbeatIntervalTicks: Int = 1
    /// Append messages a leader may have in flight to one follower before it
    /// waits for acknowledgements (pipelining window).
    public var maxInflightMessages: Int = 256
    /// Upper bound on the entry bytes in one append message (batching).
    public var maxBatchBytes: Int = 1 << 20
    /// Upper bound on the committed entry bytes handed out in one Ready.
    public var maxApplyBatchBytes: Int = 8 << 20
    /// Uncommitted bytes a leader accepts before it drops new proposals (0: no limit).
    public var maxUncommittedBytes: Int = 64 << 20
    /// Ask for votes in a trial round before bumping the term, so that a
    /// member returning from a partition does not depose a healthy leader
    /// (dissertation §9.6).
    public var preVote: Bool = true
    /// A leader steps down when a majority has not answered within an
    /// election timeout, and followers ignore votes while a leader is alive
    /// (dissertation §6.2 and §4.2.3).
    public var checkQuorum: Bool = true
    /// Seeds this member's election jitter.
    public var seed: UInt64 = 0
    /// A defect to plant, for checker tests. Ignored by release builds.
    public var plantedBug: PlantedBug? = nil

    public init(id: NodeID, seed: UInt64 = 0) {
        precondition(id != 0, "Raft member id 0 is reserved for 'none'")
        self.id = id
        self.seed = seed
    }

    /// Whether `bug` is planted in this build and these options.
    @inline(__always)
    func has(_ bug: PlantedBug) -> Bool {
        #if DEBUG
        return plantedBug == bug
        #else
        return false
        #endif
    }
}

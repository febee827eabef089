/// What the simulated members replicate and what the clients do with it.
public enum SimulationWorkload: String, Sendable, CaseIterable {
    /// `shoal-sim raft`: a key-value register per key, written with
    /// idempotency keys and read through ReadIndex.
    case raft
    /// `shoal-sim cluster`: every member applies the committed log to a real
    /// ``ClusterState`` (the managers' state machine); clients create
    /// services and update them with compare-and-set on their version.
    case cluster
    /// `shoal-sim services`: managers run the leader's orchestration loop
    /// (``LeaderCycle``: Orchestrator and Scheduler) and the dispatcher's
    /// rules on the replicated ClusterState; simulated workers register,
    /// heartbeat, start tasks on a fake runtime, crash them and die.
    case services
}

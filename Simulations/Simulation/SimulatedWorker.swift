import ClusterState
import Raft

/// One worker node of `shoal-sim services`: the agent's session with a
/// manager (open, heartbeat, status batches, assignments, as Sources/Agent
/// keeps it) and a fake runtime whose containers take a while to start,
/// crash now and then, and die with the worker. What its containers do is
/// the ground truth the invariants compare the cluster's state with.
final class SimulatedWorker {
    enum Container: Equatable {
        /// No container (never started, stopped, exited, or lost with the worker).
        case none
        /// Pulling and starting: running at `containerStarted`.
        case starting
        case running
        /// Asked to stop: gone at `containerStopped`.
        case stopping
    }

    struct Record {
        var task: ServiceTask
        var observed: ServiceTask.Status
        var container: Container = .none
        /// Bumped by every start, so a stale runtime event is ignored.
        var incarnation: UInt64 = 0
        /// Desired shutdown seen: a start under way does not run the task.
        var stopping = false
    }

    let index: Int
    let nodeID: ObjectID
    let spec: Node.Spec
    let resources: Node.Resources
    var isAlive = true
    /// Bumped by every session attempt; answers of older sessions are ignored.
    var epoch: UInt64 = 0
    /// The manager this worker's session is open on (nil while connecting).
    var sessionManager: NodeID?
    /// The manager the current attempt goes to.
    var target: NodeID = 0
    var leaderHint: NodeID = 0
    var nextSequence: UInt64 = 0
    /// The heartbeat waiting for its answer.
    var heartbeatInFlight: UInt64?
    /// The status batch waiting for its answer, and what it carried.
    var statusInFlight: (sequence: UInt64, reports: [ObjectID: ServiceTask.Status])?
    /// Known tasks, as the agent's records file keeps them (it survives a restart).
    var records: [ObjectID: Record] = [:]
    /// Observed statuses not yet acknowledged by a manager.
    var pendingReports: [ObjectID: ServiceTask.Status] = [:]
    /// FIFO links: a session is one ordered stream each way.
    var lastArrivalAtManager: UInt64 = 0
    var lastArrivalAtWorker: UInt64 = 0

    init(index: Int, nodeID: ObjectID, spec: Node.Spec, resources: Node.Resources) {
        self.index = index
        self.nodeID = nodeID
        self.spec = spec
        self.resources = resources
    }

    func takeSequence() -> UInt64 {
        nextSequence += 1
        return nextSequence
    }
}

import ClusterState
import Orchestrator
import Raft
import Scheduler

/// The shell around one manager's Raft member in `shoal-sim services`: the
/// leader's loop (``LeaderCycle``) and heartbeat deadlines
/// (``HeartbeatTracker``), the agent sessions open on it, and the proposals
/// waiting to be applied. Volatile: a crash loses all of it.
final class SimulatedManager {
    /// What to do once a proposal of this manager is applied here.
    enum Waiting {
        /// A leader-loop proposal: a refused batch is proposed again command by command.
        case loop(ClusterCommand)
        /// A worker's status batch or session opening: answer the worker.
        case worker(worker: Int, via: NodeID, epoch: UInt64, sequence: UInt64, command: ClusterCommand)
        /// An operator call (its sequence).
        case operatorCall(sequence: UInt64)
    }

    struct Session {
        var epoch: UInt64
        /// The desired state last sent per task (the Dispatcher's coalescing).
        var sentDesired: [ObjectID: ServiceTask.State] = [:]
    }

    var cycle: LeaderCycle
    /// While leading: node loads and pending tasks, kept from the applied
    /// task changes as the daemon's LeaderLoop keeps them, so a pass places
    /// from it instead of scanning every task.
    var schedulingIndex: SchedulingIndex?
    var heartbeats: HeartbeatTracker
    var idGenerator: SeededGenerator
    /// The term in which this member last started leading, once it applied an entry of that term.
    var ledTerm: UInt64 = 0
    /// No pass runs until this index is applied (the last pass's proposals).
    var passBarrier: UInt64 = 0
    /// By log index, with the term it was proposed in (another entry may take the index).
    var waiting: [UInt64: (term: UInt64, what: Waiting)] = [:]
    var sessions: [Int: Session] = [:]
    /// Workers with a session here, by node id (for routing task events).
    var sessionWorkerByNode: [ObjectID: Int] = [:]

    init(cycle: LeaderCycle, heartbeatPeriodMilliseconds: Int64, idSeed: UInt64) {
        self.cycle = cycle
        heartbeats = HeartbeatTracker(periodMilliseconds: heartbeatPeriodMilliseconds)
        idGenerator = SeededGenerator(seed: idSeed)
    }
}

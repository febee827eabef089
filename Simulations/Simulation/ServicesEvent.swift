import ClusterState
import Raft

/// Something that happens at one simulated millisecond of `shoal-sim services`.
enum ServicesEvent: SimulationEventKind {
    /// A manager's 10 ms Raft tick.
    case tick(NodeID)
    /// A Raft message between managers.
    case deliver(Message)
    /// A crashed manager restarts.
    case restart(NodeID)
    /// The fault injector picks its next action.
    case nemesis
    case healPartition(generation: UInt64)
    /// A manager's leader loop wakes up (``LeaderCycle/checkIntervalMilliseconds``).
    case leaderCheck(NodeID)
    /// A worker's call reaches the manager it is connected to.
    case workerCall(worker: Int, manager: NodeID, call: WorkerCall)
    /// A follower forwarded a worker's call; it reaches the leader.
    case forwardedCall(worker: Int, via: NodeID, leader: NodeID, call: WorkerCall)
    /// A manager's answer or assignment batch reaches a worker.
    case workerReceives(worker: Int, message: WorkerMessage)
    /// The worker tries to open a session (again).
    case workerConnect(worker: Int, epoch: UInt64)
    case workerHeartbeat(worker: Int, epoch: UInt64)
    case workerCallTimeout(worker: Int, epoch: UInt64, sequence: UInt64)
    case workerFlush(worker: Int, epoch: UInt64)
    /// The fake runtime: a container started, exited by itself, or stopped when asked.
    case containerStarted(worker: Int, taskID: ObjectID, incarnation: UInt64)
    case containerExited(worker: Int, taskID: ObjectID, incarnation: UInt64, exitCode: Int32)
    case containerStopped(worker: Int, taskID: ObjectID, incarnation: UInt64)
    case workerRestart(worker: Int)
    /// The operator's next API call, and its give-up time.
    case operatorStep
    case operatorTimeout(sequence: UInt64)
    case endFaults
    /// After healing: has every service converged?
    case convergenceCheck
    /// The state-level safety invariants on the leader's state.
    case safetyCheck

    var code: UInt64 {
        switch self {
        case .tick: return 1
        case .deliver: return 2
        case .restart: return 3
        case .nemesis: return 4
        case .healPartition: return 5
        case .leaderCheck: return 6
        case .workerCall: return 7
        case .forwardedCall: return 8
        case .workerReceives: return 9
        case .workerConnect: return 10
        case .workerHeartbeat: return 11
        case .workerCallTimeout: return 12
        case .workerFlush: return 13
        case .containerStarted: return 14
        case .containerExited: return 15
        case .containerStopped: return 16
        case .workerRestart: return 17
        case .operatorStep: return 18
        case .operatorTimeout: return 19
        case .endFaults: return 20
        case .convergenceCheck: return 21
        case .safetyCheck: return 22
        }
    }
}

/// What a simulated agent sends its manager (the Dispatcher's RPCs).
/// `sequence` pairs a call with its answer.
enum WorkerCall {
    case openSession(epoch: UInt64, sequence: UInt64)
    case heartbeat(epoch: UInt64, sequence: UInt64)
    case status(epoch: UInt64, sequence: UInt64, reports: [(taskID: ObjectID, status: ServiceTask.Status)])

    var epoch: UInt64 {
        switch self {
        case .openSession(let epoch, _), .heartbeat(let epoch, _), .status(let epoch, _, _): return epoch
        }
    }

    var sequence: UInt64 {
        switch self {
        case .openSession(_, let sequence), .heartbeat(_, let sequence), .status(_, let sequence, _): return sequence
        }
    }
}

/// What a manager sends an agent.
enum WorkerMessage {
    /// The call `sequence` of session `epoch` succeeded.
    case answered(epoch: UInt64, sequence: UInt64)
    /// It failed (no leader reachable, session unknown); try `leaderHint` (0: anyone).
    case refused(epoch: UInt64, sequence: UInt64, leaderHint: NodeID)
    /// The session's task list: all of it (`full`) or what changed.
    case assignments(epoch: UInt64, full: Bool, tasks: [ServiceTask], removed: [ObjectID])
}

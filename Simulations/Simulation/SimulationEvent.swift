import Raft

/// Something that happens at one simulated millisecond.
enum SimulationEvent: SimulationEventKind {
    /// A member's 10 ms clock tick.
    case tick(NodeID)
    /// A Raft message arrives (unless its link is cut or the member is down).
    case deliver(Message)
    case restart(NodeID)
    /// A leader's write in parallel (see ``FaultPlan/leaderWritesInParallel``)
    /// becomes durable, with every earlier one of this member's.
    case writeDurable(NodeID, sequence: UInt64)
    /// The fault injector picks its next action.
    case nemesis
    /// A partition ends, if it is still the current one.
    case healPartition(generation: UInt64)
    /// Cut the leader off (follow-up of a crash; see ``FaultPlan``).
    case isolateLeader
    /// Cut this member off if it is still leader in this term.
    case isolateMember(NodeID, term: UInt64)
    case clientStart(client: Int)
    case clientAttempt(client: Int, attempt: UInt64)
    case clientTimeout(client: Int, attempt: UInt64)
    /// A member's answer reaches a client. `sequence` names the operation.
    case clientResponse(client: Int, sequence: UInt64, value: UInt64)
    case clusterClientStart(client: Int)
    /// Cluster calls name their sequence too: a stale event of an earlier
    /// call must not act on the next one.
    case clusterClientAttempt(client: Int, sequence: UInt64, attempt: UInt64)
    case clusterClientTimeout(client: Int, sequence: UInt64, attempt: UInt64)
    /// A member's answer to a cluster call; `witnessIndex` as in ``ClusterOperation``.
    case clusterClientResponse(client: Int, sequence: UInt64, outcome: ClusterOperation.Outcome, witnessIndex: UInt64)
    /// The fault phase ends: heal everything and start proving liveness.
    case endFaults
    /// After healing: propose the probe (again) until it commits.
    case livenessProbe

    var code: UInt64 {
        switch self {
        case .tick: return 1
        case .deliver: return 2
        case .restart: return 3
        case .nemesis: return 4
        case .healPartition: return 5
        case .isolateLeader: return 6
        case .clientStart: return 7
        case .clientAttempt: return 8
        case .clientTimeout: return 9
        case .clientResponse: return 10
        case .endFaults: return 11
        case .livenessProbe: return 12
        case .isolateMember: return 13
        case .clusterClientStart: return 14
        case .clusterClientAttempt: return 15
        case .clusterClientTimeout: return 16
        case .clusterClientResponse: return 17
        case .writeDurable: return 18
        }
    }
}

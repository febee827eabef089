import ClusterState
import Raft

/// Why a manager could not carry out a write or a read.
public enum ManagerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Raft refused (no leader, not leader, transfer in progress, ...).
    case raft(RaftError)
    /// The command reached the log but the state machine refused it.
    case rejected(ClusterStateError)
    /// Leadership changed before the proposal committed; it may or may not
    /// take effect. Read the state and retry if needed.
    case proposalLost(index: UInt64)
    /// Leadership changed before a linearizable read was confirmed. Retry.
    case readInterrupted
    /// No answer within the caller's deadline (no quorum, or a leader that
    /// died with the request). The write may still take effect.
    case timedOut(operation: String)
    /// The manager is shutting down.
    case stopped
    /// Storage failed; the manager stopped to protect the log.
    case storageFailed(String)

    public var description: String {
        switch self {
        case .raft(let error): return error.description
        case .rejected(let error): return error.description
        case .proposalLost(let index):
            return "leadership changed before the write at index \(index) committed; check the current state and retry"
        case .readInterrupted: return "leadership changed during a linearizable read; retry"
        case .timedOut(let operation):
            return "\(operation) got no answer in time: the managers may have lost their quorum; check `shoal cluster inspect` and retry (a write may still take effect)"
        case .stopped: return "this manager is stopping; retry against another manager"
        case .storageFailed(let detail): return "the Raft log could not be written (\(detail)); this manager stopped — check the disk, then restart it"
        }
    }
}

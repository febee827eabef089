/// Why Raft refused a request. Every case is retryable by the caller unless
/// its description says otherwise.
public enum RaftError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No leader is known, so a proposal or read cannot be ordered. Retry after
    /// an election (a few election timeouts).
    case noLeader
    /// This member is not the leader; `leader` is the one it knows of (0 if none).
    /// Send the request there.
    case notLeader(leader: NodeID)
    /// The leader is handing leadership to another member; retry shortly.
    case leadershipTransferInProgress(to: NodeID)
    /// A configuration change is still uncommitted; only one may be in flight
    /// at a time. Retry once it commits.
    case configurationChangeInProgress
    /// The change makes no sense for the current members (for example removing
    /// a member that does not exist, or leaving no voters).
    case invalidConfigurationChange(String)
    /// Leadership can only move to another voter of the group.
    case invalidTransferTarget(NodeID)
    /// The requested log range was compacted into a snapshot.
    case compacted(index: UInt64, firstIndex: UInt64)
    /// A snapshot or compaction point refers to an index this member has not applied.
    case indexOutOfRange(index: UInt64, lastIndex: UInt64)
    /// Persisted state contradicts itself (corrupt storage). Restore this
    /// member from a peer (remove and re-add it) or from a backup.
    case corruptState(String)
    /// Too many uncommitted bytes are queued at the leader; slow down and retry.
    case proposalDropped(reason: String)

    public var description: String {
        switch self {
        case .noLeader:
            return "no Raft leader is known; retry after the election settles"
        case .notLeader(let leader):
            return leader == 0
                ? "this member is not the leader and knows no leader; retry shortly"
                : "this member is not the leader; send the request to member \(leader)"
        case .leadershipTransferInProgress(let to):
            return "leadership is moving to member \(to); retry shortly"
        case .configurationChangeInProgress:
            return "a membership change is still being committed; retry once it completes"
        case .invalidConfigurationChange(let reason):
            return "invalid membership change: \(reason)"
        case .invalidTransferTarget(let id):
            return "member \(id) cannot take leadership: it must be another voter of the group"
        case .compacted(let index, let firstIndex):
            return "log index \(index) was compacted (first available index is \(firstIndex))"
        case .indexOutOfRange(let index, let lastIndex):
            return "log index \(index) is beyond what this member has (\(lastIndex))"
        case .corruptState(let detail):
            return "Raft storage is corrupt: \(detail); remove this member and re-add it so it copies the log from a peer, or restore a backup"
        case .proposalDropped(let reason):
            return "proposal dropped: \(reason); retry later"
        }
    }
}

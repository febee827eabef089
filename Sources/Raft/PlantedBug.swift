/// Known defects that a debug build can plant in Raft, so that tests and
/// `shoal-sim --bug NAME` prove the simulator's checkers catch them. Release
/// builds compile every check for a planted bug out.
public enum PlantedBug: String, Sendable, CaseIterable {
    /// A leader commits an entry of a previous term by counting its replicas,
    /// the case of Figure 8 in the Raft paper (§5.4.2 forbids it).
    case commitPreviousTerm = "commit-previous-term"
    /// A member grants its vote without the vote reaching stable storage, so
    /// after a crash it can vote twice in one term (Figure 2: persist votedFor
    /// before responding).
    case voteNotPersisted = "vote-not-persisted"
    /// A follower acknowledges appended entries before they are persisted, so
    /// the leader commits and applies entries that a crash then erases.
    case applyBeforePersist = "apply-before-persist"
    /// A leader that persists in parallel with its followers counts itself
    /// toward a commit as soon as it hands its entries to the disk, before
    /// the write is durable, so one follower's acknowledgement commits an
    /// entry that a leader crash then leaves on a minority.
    case leaderCountsUnpersisted = "leader-counts-unpersisted"

    public var summary: String {
        switch self {
        case .commitPreviousTerm: return "leader commits a previous-term entry by counting replicas (Raft Figure 8)"
        case .voteNotPersisted: return "vote granted before it is persisted"
        case .applyBeforePersist: return "entries acknowledged, committed and applied before the follower persisted them"
        case .leaderCountsUnpersisted: return "leader counts its own entries toward a commit before its parallel write is durable"
        }
    }
}

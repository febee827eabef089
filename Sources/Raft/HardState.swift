/// The part of a member's state that must be on stable storage before it
/// sends any message that depends on it (Raft Figure 2: currentTerm,
/// votedFor), plus the commit index, which may be persisted lazily.
public struct HardState: Sendable, Equatable, Hashable {
    public var term: UInt64
    public var vote: NodeID
    public var commit: UInt64

    public init(term: UInt64 = 0, vote: NodeID = 0, commit: UInt64 = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }

    public static let empty = HardState()
}

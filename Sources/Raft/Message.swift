/// A message between Raft members. One flat struct for every kind, as on
/// the wire; fields a kind does not use stay at their defaults.
public struct Message: Sendable, Equatable, Hashable {
    public enum Kind: UInt8, Sendable, CaseIterable {
        /// Would you vote for me in `term`? Sent with the candidate's term + 1
        /// without changing anyone's term (dissertation §9.6).
        case preVote = 0
        case preVoteResponse = 1
        /// RequestVote (Raft §5.2): `index`/`logTerm` describe the candidate's last entry.
        case vote = 2
        case voteResponse = 3
        /// AppendEntries (§5.3): `index`/`logTerm` name the entry before `entries`.
        case append = 4
        /// `index` is the last index now matching the leader on success; on
        /// rejection `rejectHint`/`logTerm` narrow the search for the leader.
        case appendResponse = 5
        /// Heartbeat carrying the leader's commit (capped at what the follower
        /// holds) and the newest pending read's id in `readID`.
        case heartbeat = 6
        case heartbeatResponse = 7
        /// InstallSnapshot (§7) in one message.
        case snapshot = 8
        /// Leadership transfer: campaign now, ignoring the leader lease (§3.10).
        case timeoutNow = 9
        /// A follower forwards a linearizable read to its leader.
        case readIndex = 10
        /// The leader's answer to `readIndex`: `index` is the read's commit index.
        case readIndexResponse = 11
    }

    public var kind: Kind
    public var from: NodeID
    public var to: NodeID
    public var term: UInt64
    public var logTerm: UInt64
    public var index: UInt64
    public var entries: [Entry]
    public var commit: UInt64
    public var reject: Bool
    public var rejectHint: UInt64
    public var snapshot: Snapshot?
    /// Heartbeat round of a pending ReadIndex request (0: none).
    public var readID: UInt64
    /// Opaque request context of a forwarded ReadIndex request, and for
    /// `vote`/`preVote` a marker that the campaign is a leadership transfer.
    public var context: [UInt8]

    public init(
        kind: Kind, from: NodeID, to: NodeID, term: UInt64,
        logTerm: UInt64 = 0, index: UInt64 = 0, entries: [Entry] = [], commit: UInt64 = 0,
        reject: Bool = false, rejectHint: UInt64 = 0, snapshot: Snapshot? = nil,
        readID: UInt64 = 0, context: [UInt8] = []
    ) {
        self.kind = kind
        self.from = from
        self.to = to
        self.term = term
        self.logTerm = logTerm
        self.index = index
        self.entries = entries
        self.commit = commit
        self.reject = reject
        self.rejectHint = rejectHint
        self.snapshot = snapshot
        self.readID = readID
        self.context = context
    }

    /// Whether this kind is a response that counts as a sign of life from a
    /// follower for check-quorum.
    var isResponse: Bool {
        switch kind {
        case .preVoteResponse, .voteResponse, .appendResponse, .heartbeatResponse, .readIndexResponse: return true
        default: return false
        }
    }
}

/// Marks a campaign started by a leadership transfer: voters grant it even
/// while they believe a leader is alive (§3.10 and §4.2.3).
let transferCampaignContext: [UInt8] = Array("transfer".utf8)

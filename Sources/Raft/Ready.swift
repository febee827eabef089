/// What a member's caller must do next, in this order (the contract of
/// ``RaftNode/ready()`` and ``RaftNode/advance(_:)``):
///
/// 1. Send `messagesBeforePersist` (a leader's replication traffic: the
///    leader may write its own log in parallel with its followers, Raft
///    dissertation §10.2.1, because it counts itself only for entries whose
///    write is reported durable).
/// 2. Persist `snapshot`, then `entries` (replacing any stored entries at the
///    same or higher indexes), then `hardState`, atomically, and fsync when
///    `mustSync` is true.
/// 3. Send `messages`: votes and acknowledgements that promise what step 2 made durable.
/// 4. Apply `snapshot` (if any), then `committedEntries` in order, to the state machine.
/// 5. Call ``RaftNode/advance(_:entriesDurable:)`` with this value.
///
/// A leader's Ready may instead finish its write after step 5: see
/// ``canPersistAfterAdvance``.
public struct Ready: Sendable, Equatable {
    public var hardState: HardState?
    public var entries: [Entry]
    public var snapshot: Snapshot?
    public var mustSync: Bool
    /// Whether the caller may start step 2's write, do steps 3 to 5 without
    /// waiting for it (``RaftNode/advance(_:entriesDurable:)`` with
    /// `entriesDurable: false`), and report it with
    /// ``RaftNode/persisted(through:term:)`` once durable. True only for a
    /// leader's Ready that holds no snapshot, no `messages` and no new term
    /// or vote: its write is new entries of its own and a commit index.
    ///
    /// Why that is safe (Raft dissertation §10.2.1, as etcd's leader does):
    /// - Nothing this Ready sends promises durability: its `messages` are
    ///   empty, and `messagesBeforePersist` carry entries to followers, who
    ///   persist before they acknowledge.
    /// - The leader counts itself toward a commit only once its write is
    ///   reported durable, so a committed entry is always durable on a
    ///   majority: its followers' acknowledgements, plus the leader only
    ///   after ``RaftNode/persisted(through:term:)``. If the leader crashes
    ///   first, its copy may be lost, but a majority still holds every entry
    ///   it committed, so every future leader does too (§5.4.1).
    /// - Applying committed entries before the leader's own copy is durable
    ///   is safe for the same reason: they are already on a majority.
    /// - Term and vote changes are never deferred (a vote or a new term must
    ///   be on disk before anyone hears of it), nor are snapshots.
    /// - Writes complete in order, so the stored commit index never points
    ///   past the stored log, and a later Ready that must be durable first
    ///   (a follower's acknowledgement after stepping down) waits for them.
    public var canPersistAfterAdvance: Bool
    public var messagesBeforePersist: [Message]
    public var messages: [Message]
    public var committedEntries: [Entry]
    public var readStates: [ReadState]
    /// Set when the role or the known leader changed since the last Ready.
    public var softState: SoftState?

    public init(
        hardState: HardState? = nil, entries: [Entry] = [], snapshot: Snapshot? = nil, mustSync: Bool = false,
        canPersistAfterAdvance: Bool = false,
        messagesBeforePersist: [Message] = [], messages: [Message] = [], committedEntries: [Entry] = [],
        readStates: [ReadState] = [], softState: SoftState? = nil
    ) {
        self.hardState = hardState
        self.entries = entries
        self.snapshot = snapshot
        self.mustSync = mustSync
        self.canPersistAfterAdvance = canPersistAfterAdvance
        self.messagesBeforePersist = messagesBeforePersist
        self.messages = messages
        self.committedEntries = committedEntries
        self.readStates = readStates
        self.softState = softState
    }

    /// Whether there is nothing to do.
    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && messagesBeforePersist.isEmpty
            && messages.isEmpty && committedEntries.isEmpty && readStates.isEmpty && softState == nil
    }
}

/// A confirmed linearizable read: once the state machine has applied
/// `index`, a read of it reflects every write acknowledged before the
/// request started (Raft dissertation §6.4).
public struct ReadState: Sendable, Equatable, Hashable {
    public var index: UInt64
    public var context: [UInt8]

    public init(index: UInt64, context: [UInt8]) {
        self.index = index
        self.context = context
    }
}

/// A member's role in the group.
public enum Role: String, Sendable, Equatable {
    case follower
    case preCandidate = "pre-candidate"
    case candidate
    case leader
}

/// Volatile state that callers display or route by.
public struct SoftState: Sendable, Equatable, Hashable {
    public var role: Role
    public var leader: NodeID
    public var term: UInt64

    public init(role: Role, leader: NodeID, term: UInt64) {
        self.role = role
        self.leader = leader
        self.term = term
    }
}

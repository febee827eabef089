/// What a member's caller must do next, in this order (the contract of
/// ``RaftNode/ready()`` and ``RaftNode/advance(_:)``):
///
/// 1. Send `messagesBeforePersist` (a leader's replication traffic: the
///    leader may write its own log in parallel with its followers, Raft
///    dissertation §10.2.1, because it counts itself only after step 3).
/// 2. Persist `snapshot`, then `entries` (replacing any stored entries at the
///    same or higher indexes), then `hardState`, atomically, and fsync when
///    `mustSync` is true.
/// 3. Send `messages`: votes and acknowledgements that promise what step 2 made durable.
/// 4. Apply `snapshot` (if any), then `committedEntries` in order, to the state machine.
/// 5. Call ``RaftNode/advance(_:)`` with this value.
public struct Ready: Sendable, Equatable {
    public var hardState: HardState?
    public var entries: [Entry]
    public var snapshot: Snapshot?
    public var mustSync: Bool
    public var messagesBeforePersist: [Message]
    public var messages: [Message]
    public var committedEntries: [Entry]
    public var readStates: [ReadState]
    /// Set when the role or the known leader changed since the last Ready.
    public var softState: SoftState?

    public init(
        hardState: HardState? = nil, entries: [Entry] = [], snapshot: Snapshot? = nil, mustSync: Bool = false,
        messagesBeforePersist: [Message] = [], messages: [Message] = [], committedEntries: [Entry] = [],
        readStates: [ReadState] = [], softState: SoftState? = nil
    ) {
        self.hardState = hardState
        self.entries = entries
        self.snapshot = snapshot
        self.mustSync = mustSync
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

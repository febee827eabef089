/// The identity of a Raft member. Zero means "none" (no vote, no leader).
public typealias NodeID = UInt64

/// One record of the replicated log.
///
/// `normal` entries carry the application's command bytes (an empty normal
/// entry is the no-op a new leader appends, Raft §8). `configuration` entries
/// carry the complete member set that takes effect once the entry is appended
/// (Raft dissertation §4.1), encoded by ``Configuration/encoded()``.
public struct Entry: Sendable, Equatable, Hashable {
    public enum Kind: UInt8, Sendable {
        case normal = 0
        case configuration = 1
    }

    public var term: UInt64
    public var index: UInt64
    public var kind: Kind
    public var data: [UInt8]

    public init(term: UInt64, index: UInt64, kind: Kind = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }

    /// Bytes this entry adds to a message, for batching and flow control.
    public var sizeBytes: Int { data.count + 24 }
}

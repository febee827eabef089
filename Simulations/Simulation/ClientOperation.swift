/// One client operation on the key-value register, as the client saw it:
/// the history the linearizability checker judges.
public struct ClientOperation: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        case put
        case get
    }

    public var client: UInt64
    public var kind: Kind
    public var key: UInt64
    /// For `put` the value written; for `get` the value read (0: absent).
    public var value: UInt64
    /// Simulated milliseconds at which the client first sent the request.
    public var invokeTime: UInt64
    /// When the client received the answer; nil when it gave up (timed
    /// out): the outcome is unknown, the operation may or may not have taken
    /// effect, at any time after `invokeTime`.
    public var returnTime: UInt64?

    public init(client: UInt64, kind: Kind, key: UInt64, value: UInt64, invokeTime: UInt64, returnTime: UInt64?) {
        self.client = client
        self.kind = kind
        self.key = key
        self.value = value
        self.invokeTime = invokeTime
        self.returnTime = returnTime
    }

    public var description: String {
        let end = returnTime.map { "\($0)" } ?? "?"
        return "client \(client) \(kind.rawValue)(k\(key)) = \(value) [\(invokeTime), \(end)]"
    }
}

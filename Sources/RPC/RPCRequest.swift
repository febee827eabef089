import Net

/// One call as its handler sees it.
public struct RPCRequest: Sendable {
    /// The connection-scoped id the client chose.
    public let callID: UInt64
    public let method: String
    public let payload: [UInt8]
    /// The caller as its verified certificate names it; nil for a caller
    /// without a certificate (only on methods with `RPCAccess.anonymous`).
    public let caller: NodeIdentity?
    /// When the client stops waiting; the handler's task is cancelled then.
    public let deadline: ContinuousClock.Instant?
}

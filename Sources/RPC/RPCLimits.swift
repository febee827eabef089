import Wire

/// The limits of an RPC connection, each with its unit in the name.
public enum RPCLimits {
    /// The largest frame (one envelope with its payload) accepted or sent
    /// unless configured otherwise: Wire's frame limit.
    public static let defaultMaxFrameBytes = WireLimits.defaultMaxFrameBytes
    /// Messages of one server stream the client buffers before the server
    /// must wait for credit: the per-call bound a slow consumer imposes.
    public static let defaultStreamWindowMessages = 64
    /// Calls one connection may have running on a server at once; more are
    /// refused with `resourceExhausted` (they are not queued).
    public static let defaultMaxConcurrentCallsPerConnection = 4096
    /// Encoded frames waiting for the writer above which senders of answers
    /// and stream messages wait: bounds memory when the peer reads slowly.
    public static let outboundHighWaterBytes = 1024 * 1024
    /// Plaintext bytes asked for per read of the transport.
    public static let readChunkBytes = 64 * 1024
    /// How long closing a connection may take to flush and say goodbye.
    public static let closeTimeout: Duration = .seconds(2)
    /// How long a new connection on `RPCServer.serve(listener:...)` may take
    /// to complete its TLS handshake.
    public static let handshakeTimeout: Duration = .seconds(10)
}

import Net

/// A byte stream HTTP runs over: a plain ``Net/Connection`` (TCP or Unix
/// socket) or a ``Net/TLSConnection``. One reader and one writer at a time.
public protocol HTTPTransport: AnyObject, Sendable {
    /// Up to `maxBytes`; `[]` once the peer closed its side.
    func read(maxBytes: Int, deadline: ContinuousClock.Instant?) async throws -> [UInt8]
    /// All of `bytes`, waiting while the send buffer is full (back-pressure).
    func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant?) async throws
    /// Graceful close: flush, shut down, release.
    func close(deadline: ContinuousClock.Instant?) async throws
    /// Reset at once.
    func abort()
    /// The peer's address, for logs and handlers.
    var remoteAddress: SocketAddress? { get }
    /// The peer's verified TLS certificate, nil over plain sockets.
    var peerCertificate: Certificate? { get }
}

extension Connection: HTTPTransport {
    public var peerCertificate: Certificate? { nil }
}

extension TLSConnection: HTTPTransport {
    public var remoteAddress: SocketAddress? { connection.remoteAddress }
}

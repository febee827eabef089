import Net

/// A byte stream an RPC connection runs over: a mutual-TLS connection between
/// nodes, or a plain `Connection` (a root-only Unix socket for the local API).
///
/// RPC uses one reader task and one writer task per transport, which both
/// `TLSConnection` and `Connection` allow.
public protocol RPCTransport: AnyObject, Sendable {
    func read(maxBytes: Int, deadline: ContinuousClock.Instant?) async throws -> [UInt8]
    func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant?) async throws
    func close(deadline: ContinuousClock.Instant?) async throws
    func abort()
}

extension TLSConnection: RPCTransport {}
extension Connection: RPCTransport {}

import Net

/// A byte stream an RPC connection runs over: a mutual-TLS connection between
/// nodes, or a plain `Connection` (a root-only Unix socket for the local API).
///
/// RPC uses one reader task and one writer (a writer task, or a sender
/// writing inline with `writeNow` while the writer task is idle, never both
/// at once), which both `TLSConnection` and `Connection` allow. The reader
/// runs on the transport's `eventLoop`, so readiness and the read that
/// follows stay on one thread.
public protocol RPCTransport: AnyObject, Sendable {
    func read(maxBytes: Int, deadline: ContinuousClock.Instant?) async throws -> [UInt8]
    func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant?) async throws
    /// Sends `bytes` from the calling thread without waiting; returns the
    /// bytes still buffered (above `lowWaterMarkBytes`, let it drain first).
    func writeNow(_ bytes: [UInt8]) throws -> Int
    var lowWaterMarkBytes: Int { get }
    var eventLoop: EventLoop { get }
    func close(deadline: ContinuousClock.Instant?) async throws
    func abort()
}

extension TLSConnection: RPCTransport {}
extension Connection: RPCTransport {}

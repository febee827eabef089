import Foundation
import Net

/// Serves RPC methods on connections: handlers registered by method name,
/// each with the roles that may call it.
///
/// Every call is checked against the caller's certificate role
/// (`TLSConnection.peerIdentity`) before its handler runs; a refused call
/// gets `permissionDenied` naming the method and the role it requires. Each
/// admitted call runs in its own task, cancelled when the client cancels,
/// when its deadline passes, or when the connection ends, so a handler
/// observes all three as ordinary task cancellation.
///
/// Register every method before serving; registering twice is a programmer
/// error.
public final class RPCServer: @unchecked Sendable {
    /// Answers one unary call with a payload, or throws (an `RPCError` to
    /// choose the status the caller sees).
    public typealias UnaryHandler = @Sendable (RPCRequest) async throws -> [UInt8]
    /// Sends any number of messages through the writer, then returns (the
    /// stream ends ok) or throws (it ends with that error).
    public typealias StreamHandler = @Sendable (RPCRequest, RPCStreamWriter) async throws -> Void

    /// Answers one unary call at once, on the connection's reading task,
    /// before the next frame is read. Must not block.
    public typealias InlineHandler = @Sendable (RPCRequest) throws -> [UInt8]

    /// Takes one one-way message, on the connection's reading task, before
    /// the next frame is read. Must not block. Throwing closes the
    /// connection (there is no call to fail): throw only for input that
    /// says the peer is broken or incompatible.
    public typealias OneWayHandler = @Sendable (RPCRequest) throws -> Void

    enum Handler {
        case unary(UnaryHandler)
        case stream(StreamHandler)
        case inline(InlineHandler)
        case oneWay(OneWayHandler)
    }

    struct Method {
        let access: RPCAccess
        let handler: Handler
    }

    /// The largest frame accepted from and sent to a client.
    public let maxFrameBytes: Int
    /// Calls one connection may have running at once.
    public let maxConcurrentCallsPerConnection: Int
    private let lock = NSLock()
    private var methods: [String: Method] = [:] // guarded by `lock`

    public init(
        maxFrameBytes: Int = RPCLimits.defaultMaxFrameBytes,
        maxConcurrentCallsPerConnection: Int = RPCLimits.defaultMaxConcurrentCallsPerConnection
    ) {
        precondition(maxFrameBytes > RPCFrame.maxOverheadBytes + RPCFrame.maxMethodBytes,
                     "maxFrameBytes \(maxFrameBytes) leaves no room for an envelope")
        precondition(maxConcurrentCallsPerConnection > 0, "maxConcurrentCallsPerConnection must be positive")
        self.maxFrameBytes = maxFrameBytes
        self.maxConcurrentCallsPerConnection = maxConcurrentCallsPerConnection
    }

    /// Registers a unary method that callers allowed by `access` may call.
    public func register(_ method: String, access: RPCAccess, handler: @escaping UnaryHandler) {
        add(method, Method(access: access, handler: .unary(handler)))
    }

    /// Registers a unary method whose handler runs inline, in arrival order,
    /// without a task of its own: for short non-blocking handlers whose
    /// callers keep several calls in flight and rely on their order (Raft's
    /// message batches). It sees no cancellation and no deadline, and runs
    /// on the connection's event-loop thread, so it must never block.
    public func registerInline(_ method: String, access: RPCAccess, handler: @escaping InlineHandler) {
        add(method, Method(access: access, handler: .inline(handler)))
    }

    /// Registers a method that takes one-way messages (``RPCClient/sendOneWay(method:payload:)``):
    /// no answer frame, so a stream of small messages (Raft's) costs one
    /// frame each instead of two. Handled inline, in arrival order, as
    /// ``registerInline(_:access:handler:)``. A message the server refuses
    /// (unknown method, caller not allowed, handler error) closes the
    /// connection with a goAway saying why.
    public func registerOneWay(_ method: String, access: RPCAccess, handler: @escaping OneWayHandler) {
        add(method, Method(access: access, handler: .oneWay(handler)))
    }

    /// Registers a server-stream method that callers allowed by `access` may call.
    public func registerStream(_ method: String, access: RPCAccess, handler: @escaping StreamHandler) {
        add(method, Method(access: access, handler: .stream(handler)))
    }

    private func add(_ name: String, _ method: Method) {
        precondition(!name.isEmpty && name.utf8.count <= RPCFrame.maxMethodBytes,
                     "method name must be 1 to \(RPCFrame.maxMethodBytes) bytes, got \"\(name)\"")
        lock.withLock {
            precondition(methods[name] == nil, "method \(name) is registered twice")
            methods[name] = method
        }
    }

    func method(named name: String) -> Method? {
        lock.withLock { methods[name] }
    }

    /// Serves calls on a mutual-TLS connection until the peer closes it. The
    /// caller's identity is the one its certificate names.
    ///
    /// - Throws: `RPCError` with `protocolViolation` when the peer sent a
    ///   malformed or oversized frame (the connection was told why with a
    ///   goAway frame, then closed), or `unavailable` when the transport failed.
    public func serve(_ connection: TLSConnection) async throws {
        try await serve(transport: connection, peer: connection.peerIdentity)
    }

    /// Serves calls on a plain connection (the local Unix socket), as `peer`:
    /// the caller vouches for who is on the other end (for example from the
    /// socket's credentials); nil allows only anonymous methods.
    public func serve(_ connection: Connection, peer: NodeIdentity?) async throws {
        try await serve(transport: connection, peer: peer)
    }

    /// Frames are read, and inline handlers run and answered, on the
    /// transport's event loop (no hop to another thread per request); other
    /// handlers run in tasks on the global executor.
    public func serve(transport: any RPCTransport, peer: NodeIdentity?) async throws {
        let connection = RPCServerConnection(server: self, transport: transport, peer: peer)
        try await withTaskExecutorPreference(transport.eventLoop) {
            try await connection.run()
        }
    }

    /// Accepts connections on `listener`, completes each TLS handshake with
    /// the context `context()` returns at that moment (so a renewed
    /// certificate applies to new connections while old ones keep theirs),
    /// and serves each until it ends. Returns once the listener is closed and
    /// every connection has ended; cancel the calling task to end them.
    ///
    /// `onConnectionEnd` is told how each connection ended (nil: the peer
    /// closed it cleanly), for logs and tests.
    public func serve(
        listener: TCPListener,
        context: @escaping @Sendable () -> TLSContext,
        onConnectionEnd: (@Sendable (NodeIdentity?, (any Error)?) -> Void)? = nil
    ) async {
        await withDiscardingTaskGroup { connections in
            while true {
                let connection: Connection
                do {
                    connection = try await listener.accept()
                } catch let error as SystemError where error.errno == EMFILE || error.errno == ENFILE {
                    // Out of descriptors: back off instead of spinning; others will close.
                    try? await Task.sleep(for: .milliseconds(50))
                    continue
                } catch {
                    break // closed or cancelled
                }
                connections.addTask {
                    let tls: TLSConnection
                    do {
                        tls = try await TLSConnection.handshake(over: connection, context: context(), deadline: .now + RPCLimits.handshakeTimeout)
                    } catch {
                        onConnectionEnd?(nil, error)
                        return
                    }
                    do {
                        try await self.serve(tls)
                        onConnectionEnd?(tls.peerIdentity, nil)
                    } catch {
                        onConnectionEnd?(tls.peerIdentity, error)
                    }
                }
            }
        }
    }
}

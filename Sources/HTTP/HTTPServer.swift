import Foundation
import Net

/// An HTTP/1.1 server over any ``HTTPTransport``: TCP, Unix sockets, TLS.
///
/// Each connection runs one task that reads a request head, routes it, runs
/// the handler, writes the response, and loops (keep-alive). Pipelined
/// requests wait in the parser's buffer until the previous response is
/// written, so responses always leave in request order. Request bodies
/// stream to the handler with back-pressure; responses stream from it.
///
/// Timeouts: ``Configuration/idleTimeout`` until the first byte of a request,
/// then ``Configuration/headerTimeout`` for the whole head (a slowloris
/// client trickling header bytes is cut off), ``Configuration/bodyReadTimeout``
/// per body read and ``Configuration/writeTimeout`` per write.
///
/// `shutdown` stops accepting, closes idle connections, lets in-flight
/// requests finish (their responses say `Connection: close`) until the grace
/// period ends, then resets what is left.
public final class HTTPServer: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var limits = HTTPParserLimits()
        /// Wait for the first byte of the next request on a kept-alive connection.
        public var idleTimeout: Duration = .seconds(60)
        /// From the first byte of a request until its head is complete.
        public var headerTimeout: Duration = .seconds(10)
        /// The most a single body read may wait.
        public var bodyReadTimeout: Duration = .seconds(60)
        /// The most a single write may wait for the peer to take data.
        public var writeTimeout: Duration = .seconds(60)
        /// TLS handshake on a new connection.
        public var handshakeTimeout: Duration = .seconds(10)
        /// Unread request body the server discards to keep a connection alive
        /// after the handler answered; more than this closes the connection.
        public var maxUnreadBodyDrainBytes = 256 * 1024
        /// Bytes asked of the socket per read.
        public var readChunkBytes = 64 * 1024
        /// Sent as `Server`; nil sends none.
        public var serverName: String? = "shoal"

        public init() {}
    }

    public let configuration: Configuration
    private let router: HTTPRouter
    private let lock = NSLock()
    // Guarded by `lock`.
    private var listeners: [TCPListener] = []
    private var acceptTasks: [Task<Void, Never>] = []
    private var connections: [UInt64: ConnectionEntry] = [:]
    private var nextConnectionID: UInt64 = 1
    private var isShuttingDown = false

    private struct ConnectionEntry {
        var task: Task<Void, Never>?
        var transport: (any HTTPTransport)?
        var isIdle = true
    }

    public init(router: HTTPRouter, configuration: Configuration = Configuration()) {
        self.router = router
        self.configuration = configuration
    }

    /// A server with one handler for every request.
    public convenience init(configuration: Configuration = Configuration(), handler: @escaping HTTPRouter.Handler) {
        var router = HTTPRouter()
        router.fallback = handler
        self.init(router: router, configuration: configuration)
    }

    // MARK: Accepting

    /// Binds `address` and serves every connection accepted there (over TLS
    /// when `tls` is given). Returns the bound address (port 0 resolved).
    @discardableResult
    public func listen(on address: SocketAddress, tls: TLSContext? = nil, group: EventLoopGroup = .shared) throws -> SocketAddress {
        if let tls { return try listen(on: address, tlsContext: { tls }, group: group) }
        return try listen(on: address, tlsContext: nil, group: group)
    }

    /// Binds `address` and serves every connection accepted there over TLS
    /// with the context `tlsContext()` returns when the connection arrives:
    /// a renewed certificate (`CredentialStore`) applies to new connections
    /// while open ones keep theirs.
    @discardableResult
    public func listen(on address: SocketAddress, tlsContext: (@Sendable () -> TLSContext)?, group: EventLoopGroup = .shared) throws -> SocketAddress {
        let listener = try TCPListener.bind(address, group: group)
        let task = Task { [weak self] in
            while let connection = try? await listener.accept() {
                guard let self else { connection.abort(); return }
                self.start(connection, tls: tlsContext?())
            }
        }
        let accepted: Bool = lock.withLock {
            guard !isShuttingDown else { return false }
            listeners.append(listener)
            acceptTasks.append(task)
            return true
        }
        if !accepted {
            listener.close()
            task.cancel()
        }
        return listener.localAddress
    }

    /// The addresses currently listened on.
    public var localAddresses: [SocketAddress] { lock.withLock { listeners.map(\.localAddress) } }

    private func start(_ connection: Connection, tls: TLSContext?) {
        let id: UInt64? = lock.withLock {
            guard !isShuttingDown else { return nil }
            defer { nextConnectionID += 1 }
            connections[nextConnectionID] = ConnectionEntry(transport: connection)
            return nextConnectionID
        }
        guard let id else { connection.abort(); return }
        // With routes that run on the event loop, the connection is read
        // there too (see ``serveConnection(_:id:)``); otherwise on the pool.
        let task = Task(executorPreference: router.hasEventLoopRoutes ? connection.eventLoop : nil) { [self] in
            defer { _ = lock.withLock { connections.removeValue(forKey: id) } }
            let transport: any HTTPTransport
            if let tls {
                do {
                    transport = try await TLSConnection.handshake(over: connection, context: tls, deadline: .now + configuration.handshakeTimeout)
                } catch {
                    return
                }
                lock.withLock { connections[id]?.transport = transport }
            } else {
                transport = connection
            }
            await serveConnection(transport, id: id)
        }
        lock.withLock {
            if connections[id] != nil { connections[id]?.task = task }
        }
    }

    /// Serves one already-open connection until it closes (for callers with
    /// their own accept loop). Returns when the connection is done.
    public func serve(_ transport: any HTTPTransport) async {
        let id: UInt64? = lock.withLock {
            guard !isShuttingDown else { return nil }
            defer { nextConnectionID += 1 }
            connections[nextConnectionID] = ConnectionEntry(task: nil, transport: transport)
            return nextConnectionID
        }
        guard let id else { transport.abort(); return }
        defer { _ = lock.withLock { connections.removeValue(forKey: id) } }
        await serveConnection(transport, id: id)
    }

    // MARK: Shutdown

    /// Stops accepting, closes idle connections, waits up to `gracePeriod` for
    /// in-flight requests to finish, then resets the connections left.
    public func shutdown(gracePeriod: Duration = .seconds(30)) async {
        let (listeners, idleTasks): ([TCPListener], [Task<Void, Never>]) = lock.withLock {
            isShuttingDown = true
            let idle = connections.values.filter(\.isIdle).compactMap(\.task)
            defer { self.listeners = [] }
            return (self.listeners, idle)
        }
        for listener in listeners { listener.close() }
        for task in idleTasks { task.cancel() }
        let deadline = ContinuousClock.now + gracePeriod
        while lock.withLock({ !connections.isEmpty }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: Self.shutdownPollInterval)
        }
        let remaining = lock.withLock { connections.values.compactMap(\.transport) }
        for transport in remaining { transport.abort() }
        let tasks = lock.withLock { connections.values.compactMap(\.task) + acceptTasks }
        for task in tasks { await task.value }
    }

    /// How often `shutdown` checks whether in-flight requests finished.
    static let shutdownPollInterval: Duration = .milliseconds(5)

    /// Connections open now (accepted and not yet closed).
    public var openConnectionCount: Int { lock.withLock { connections.count } }

    /// Marks the connection busy; false if shutdown has begun (the
    /// connection should close instead of serving another request).
    private func beginRequest(_ id: UInt64) -> Bool {
        lock.withLock {
            guard !isShuttingDown else { return false }
            connections[id]?.isIdle = false
            return true
        }
    }

    /// Marks the connection idle; false if shutdown has begun.
    private func endRequest(_ id: UInt64) -> Bool {
        lock.withLock {
            connections[id]?.isIdle = true
            return !isShuttingDown
        }
    }

    private var shuttingDown: Bool { lock.withLock { isShuttingDown } }

    // MARK: One connection

    private func serveConnection(_ transport: any HTTPTransport, id: UInt64) async {
        let reader = HTTPStreamReader(
            parser: HTTPParser(kind: .request, limits: configuration.limits),
            transport: transport,
            readChunkBytes: configuration.readChunkBytes
        )
        var keepOpen = true
        while keepOpen {
            guard endRequest(id) else {
                await closeQuietly(transport, timeout: Self.idleCloseTimeout)
                return
            }
            // Idle until the first byte, then the head has `headerTimeout` in all.
            let idleDeadline = ContinuousClock.now + configuration.idleTimeout
            var headDeadline: ContinuousClock.Instant?
            let headerTimeout = configuration.headerTimeout
            let event: HTTPParserEvent?
            do {
                event = try await reader.nextEvent {
                    if reader.parser.isIdle { return idleDeadline }
                    if headDeadline == nil { headDeadline = .now + headerTimeout }
                    return headDeadline
                }
            } catch let error as HTTPParseError {
                await sendErrorAndClose(error, transport: transport)
                return
            } catch {
                // Timed out (idle or slowloris), cancelled by shutdown, or reset.
                if reader.parser.isIdle || error is CancellationError {
                    await closeQuietly(transport, timeout: Self.idleCloseTimeout)
                } else {
                    await sendAndClose(.text(.requestTimeout, "the request head did not arrive within \(headerTimeout)\n"), transport: transport)
                }
                return
            }
            guard case .request(let head)? = event else {
                await closeQuietly(transport)
                return
            }
            guard beginRequest(id) else {
                await closeQuietly(transport)
                return
            }
            do {
                if runsOnEventLoop(head) {
                    keepOpen = try await respond(to: head, reader: reader, transport: transport)
                } else {
                    // Handlers may block: off the loop, with the response's write.
                    keepOpen = try await withTaskExecutorPreference(globalConcurrentExecutor) {
                        try await respond(to: head, reader: reader, transport: transport)
                    }
                }
            } catch let error as HTTPParseError {
                await sendErrorAndClose(error, transport: transport)
                return
            } catch {
                transport.abort()
                return
            }
            if shuttingDown { keepOpen = false }
        }
        await closeQuietly(transport)
    }

    /// Whether the request's route may run where the connection is read.
    private func runsOnEventLoop(_ head: HTTPRequestHead) -> Bool {
        guard router.hasEventLoopRoutes, case .found(let route, _) = router.match(method: head.method, path: head.rawPath) else { return false }
        return route.runsOnEventLoop
    }

    /// Runs the handler for one request and writes its response. Returns
    /// whether the connection can carry another request.
    private func respond(to head: HTTPRequestHead, reader: HTTPStreamReader, transport: any HTTPTransport) async throws -> Bool {
        let framing = reader.parser.bodyFraming ?? .none
        let source = HTTPIncomingBodySource(reader: reader, framing: framing, readTimeout: configuration.bodyReadTimeout)
        var continueSent = false
        var response: HTTPServerResponse
        var canContinue = head.keepAlive

        let expectations = head.headers.listValues(for: "Expect")
        if !expectations.isEmpty, !head.expectsContinue {
            response = .text(.expectationFailed, "only `Expect: 100-continue` is supported\n")
            canContinue = false
            try await write(response, for: head, keepAlive: false, transport: transport)
            return false
        }

        let match: HTTPRouter.Match = router.match(method: head.method, path: head.rawPath)
        switch match {
        case .found(let route, let parameters):
            try reader.parser.setBodyLimit(route.maxBodyBytes ?? configuration.limits.maxBodyBytes)
            if head.expectsContinue, framing != .none {
                source.beforeFirstRead = { [configuration] in
                    continueSent = true
                    try await transport.write(Self.continueBytes, deadline: .now + configuration.writeTimeout)
                }
            }
            let request = HTTPServerRequest(
                head: head,
                pathParameters: parameters,
                body: HTTPIncomingBody(source: source),
                remoteAddress: transport.remoteAddress,
                peerCertificate: transport.peerCertificate
            )
            response = await run(route.handler, request)
        case .methodNotAllowed(let allowed):
            response = .text(.methodNotAllowed, "\(head.method) is not allowed here\n", headers: ["Allow": allowed.map(\.rawValue).joined(separator: ", ")])
        case .notFound:
            if let fallback = router.fallback {
                let request = HTTPServerRequest(head: head, body: HTTPIncomingBody(source: source), remoteAddress: transport.remoteAddress, peerCertificate: transport.peerCertificate)
                response = await run(fallback, request)
            } else {
                response = .text(.notFound, "no resource at \(head.rawPath)\n")
            }
        }
        // A body error (too large, malformed) seen by the handler ends the connection with its status.
        if source.hasFailed {
            canContinue = false
        }
        // The body must be consumed before the next request can be parsed.
        if !source.finished && !source.hasFailed {
            if head.expectsContinue && !continueSent {
                // The client was told nothing: it may or may not send the body. Close.
                canContinue = false
                source.beforeFirstRead = nil
            } else if canContinue {
                canContinue = (try? await source.drain(maxBytes: configuration.maxUnreadBodyDrainBytes)) ?? false
            }
        }
        if shuttingDown { canContinue = false }
        if let upgrade = response.upgradeHandler, response.status == .switchingProtocols {
            // The handler answered with an upgrade: the body (if any) was
            // read, so what the parser holds past it is the new protocol's.
            guard source.finished || framing == .none || framing == .length(0) else {
                try await write(.text(.badRequest, "an upgrade request carries no body\n"), for: head, keepAlive: false, transport: transport)
                return false
            }
            let headBytes = HTTPSerializer.encode(HTTPResponseHead(status: response.status, version: .http1_1, headers: response.headers))
            try await transport.write(headBytes, deadline: .now + configuration.writeTimeout)
            await upgrade(HTTPUpgradedStream(transport: transport, leftover: reader.parser.takeBufferedBytes()))
            return false
        }
        try await write(response, for: head, keepAlive: canContinue, transport: transport)
        return canContinue
    }

    private func run(_ handler: HTTPRouter.Handler, _ request: HTTPServerRequest) async -> HTTPServerResponse {
        do {
            return try await handler(request)
        } catch let error as HTTPParseError {
            return .text(error.status, "\(error)\n")
        } catch let error as any HTTPResponseError {
            return error.response
        } catch {
            return .text(.internalServerError, "internal error: \(error)\n")
        }
    }

    static let continueBytes = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    private func write(_ response: HTTPServerResponse, for request: HTTPRequestHead, keepAlive: Bool, transport: any HTTPTransport) async throws {
        var headers = response.headers
        var keepAlive = keepAlive
        let bodyAllowed = !response.status.forbidsContent
        let sendBody = bodyAllowed && request.method != .head
        var chunked = false
        if bodyAllowed {
            if let length = response.body.knownLength {
                if !headers.contains(name: "Content-Length") { headers.add(name: "Content-Length", value: String(length)) }
            } else if request.method != .head {
                if request.version == .http1_1 {
                    headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
                    chunked = true
                } else {
                    keepAlive = false
                }
            }
        } else {
            headers.remove(name: "Content-Length")
            headers.remove(name: "Transfer-Encoding")
        }
        if !keepAlive {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if request.version == .http1_0 {
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        if !headers.contains(name: "Date") { headers.add(name: "Date", value: HTTPDate.now()) }
        if let serverName = configuration.serverName, !headers.contains(name: "Server") { headers.add(name: "Server", value: serverName) }

        var bytes = HTTPSerializer.encode(HTTPResponseHead(status: response.status, version: .http1_1, headers: headers))
        let deadline = ContinuousClock.now + configuration.writeTimeout
        switch response.body.storage {
        case .bytes(let body):
            if sendBody { bytes.append(contentsOf: body) }
            try await transport.write(bytes, deadline: deadline)
        case .stream(let length, let producer):
            try await transport.write(bytes, deadline: deadline)
            guard sendBody else { return }
            let writer = HTTPBodyWriter(transport: transport, chunked: chunked, declaredLength: length, writeTimeout: configuration.writeTimeout)
            // A producer failing midway cannot change the status any more:
            // the error propagates and the connection is reset, so the client
            // sees a truncated body, never a complete-looking one.
            try await producer(writer)
            try await writer.finish()
        }
        if !keepAlive {
            // The caller closes gracefully.
        }
    }

    private func sendErrorAndClose(_ error: HTTPParseError, transport: any HTTPTransport) async {
        await sendAndClose(.text(error.status, "\(error)\n"), transport: transport)
    }

    private func sendAndClose(_ response: HTTPServerResponse, transport: any HTTPTransport) async {
        let head = HTTPRequestHead(method: .get, target: "/", version: .http1_1)
        do {
            try await write(response, for: head, keepAlive: false, transport: transport)
        } catch {
            transport.abort()
            return
        }
        await closeQuietly(transport)
    }

    private func closeQuietly(_ transport: any HTTPTransport, timeout: Duration = closeTimeout) async {
        // In a task of its own: the connection's task may be cancelled
        // (shutdown), and a cancelled close would reset instead of closing.
        let closeTimeout = timeout
        await Task {
            do {
                try await transport.close(deadline: .now + closeTimeout)
            } catch {
                transport.abort()
            }
        }.value
    }

    /// How long a graceful close may wait for the peer to read what is left.
    static let closeTimeout: Duration = .seconds(5)
    /// Closing a connection with nothing in flight (idle timeout, shutdown):
    /// our FIN is sent at once; a pooling client that does not read its idle
    /// connections never answers it, so do not wait long for its FIN.
    static let idleCloseTimeout: Duration = .milliseconds(200)
}

import Foundation
import Net

/// A request for ``HTTPClient/execute(_:)``.
public struct HTTPClientRequest: Sendable {
    public var method: HTTPMethod
    public var url: HTTPURL
    public var headers: HTTPHeaders
    public var body: HTTPBody

    public init(method: HTTPMethod = .get, url: HTTPURL, headers: HTTPHeaders = HTTPHeaders(), body: HTTPBody = .empty) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// A response: the head now, the body as a stream. Read the body to its end
/// (or drop it) promptly: the connection returns to the pool only once the
/// body ended, and is reset if the body is dropped unfinished.
public struct HTTPClientResponse: Sendable {
    public let head: HTTPResponseHead
    public let body: HTTPIncomingBody
    /// The URL that answered (after redirects).
    public let url: HTTPURL

    public var status: HTTPStatus { head.status }
    public var headers: HTTPHeaders { head.headers }
}

/// An HTTP/1.1 client with a keep-alive connection pool per server (TCP,
/// TLS, Unix socket), streaming request and response bodies, optional
/// redirects (off by default) and `Expect: 100-continue`.
public final class HTTPClient: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Client TLS context for `https` URLs (mutual TLS inside the cluster).
        public var tls: TLSContext?
        public var connectTimeout: Duration = .seconds(10)
        /// From the end of the request until the response head arrived.
        public var responseTimeout: Duration = .seconds(60)
        /// The most a single body read may wait.
        public var bodyReadTimeout: Duration = .seconds(60)
        /// The most a single write may wait for the server to take data.
        public var writeTimeout: Duration = .seconds(60)
        /// With `Expect: 100-continue`: send the body anyway if neither
        /// `100 Continue` nor a final answer came within this time (RFC 9110 §10.1.1).
        public var expectContinueTimeout: Duration = .seconds(1)
        /// Idle connections kept per server.
        public var maxIdleConnectionsPerServer = 8
        /// A pooled connection idle longer than this is closed instead of reused.
        public var idleConnectionTimeout: Duration = .seconds(30)
        /// Redirects followed; 0 (the default) returns 3xx responses as they are.
        public var maxRedirects = 0
        /// Response head limits (response bodies are unlimited: they stream).
        public var limits: HTTPParserLimits = {
            var limits = HTTPParserLimits()
            limits.maxBodyBytes = nil
            return limits
        }()
        /// Bytes asked of the socket per read.
        public var readChunkBytes = 64 * 1024

        public init(tls: TLSContext? = nil) {
            self.tls = tls
        }
    }

    public let configuration: Configuration
    private let explicitGroup: EventLoopGroup?
    /// Looked up at the first connection, not in `init`: a client that never
    /// connects (the CLI's `container run` makes its one call without it)
    /// starts no loop threads.
    private var group: EventLoopGroup { explicitGroup ?? .shared }
    private let lock = NSLock()
    private var idle: [String: [PooledConnection]] = [:]
    private var openedConnections = 0

    /// `group` defaults to ``Net/EventLoopGroup/shared``.
    public init(configuration: Configuration = Configuration(), group: EventLoopGroup? = nil) {
        self.configuration = configuration
        explicitGroup = group
    }

    deinit {
        for connection in idle.values.joined() { connection.transport.abort() }
    }

    /// Connections opened so far (a keep-alive reuse test counts them).
    public var connectionsOpened: Int { lock.withLock { openedConnections } }
    /// Idle pooled connections now.
    public var idleConnectionCount: Int { lock.withLock { idle.values.reduce(0) { $0 + $1.count } } }

    /// Closes every idle pooled connection.
    public func shutdown() async {
        let connections = lock.withLock {
            defer { idle = [:] }
            return Array(idle.values.joined())
        }
        for connection in connections { try? await connection.transport.close(deadline: .now + .seconds(1)) }
    }

    /// Convenience: GET `url` and collect up to `maxBytes` of the body.
    public func get(_ url: String, maxBytes: Int = 16 * 1024 * 1024) async throws -> (HTTPClientResponse, [UInt8]) {
        let response = try await execute(HTTPClientRequest(url: try HTTPURL(url)))
        return (response, try await response.body.collect(upTo: maxBytes))
    }

    /// Sends `request` and returns once the response head arrived.
    ///
    /// - Throws: connection errors (`SystemError` ECONNREFUSED, ``Net/NetError``
    ///   timeouts), ``HTTPParseError`` for a malformed response,
    ///   ``HTTPError`` for timeouts, redirects and body length mismatches.
    public func execute(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        var request = request
        var redirects = 0
        while true {
            let response = try await executeWithRetry(request)
            guard configuration.maxRedirects > 0, response.status.isRedirect else { return response }
            guard redirects < configuration.maxRedirects else {
                throw HTTPError.tooManyRedirects(url: request.url.description, limit: configuration.maxRedirects)
            }
            let location = response.headers["Location"]
            let next: HTTPURL
            if let location, location.hasPrefix("/") {
                next = request.url.with(target: location)
            } else if let location, let absolute = try? HTTPURL(location) {
                next = absolute
            } else {
                throw HTTPError.invalidRedirect(url: request.url.description, location: location)
            }
            // Drop the redirect's body (usually tiny) so its connection is reused.
            _ = try? await response.body.collect(upTo: Self.maxRedirectBodyBytes)
            let code = response.status.code
            if code == 303 || ((code == 301 || code == 302) && request.method == .post) {
                request.method = request.method == .head ? .head : .get
                request.body = .empty
                request.headers.remove(name: "Content-Length")
                request.headers.remove(name: "Content-Type")
            } else if !request.body.isReplayable {
                throw HTTPError.bodyNotReplayable(request.url.description)
            }
            if next.poolKey != request.url.poolKey { request.headers.remove(name: "Authorization") }
            request.headers.remove(name: "Host")
            request.url = next
            redirects += 1
        }
    }

    /// A redirect body larger than this is not read (the connection is reset instead).
    static let maxRedirectBodyBytes = 64 * 1024

    private func executeWithRetry(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        let pooled = checkOut(request.url)
        if let pooled {
            do {
                return try await exchange(request, on: pooled)
            } catch let failure as StaleConnection {
                // The server closed the kept-alive connection before reading
                // our request: send it again on a fresh connection.
                guard request.body.isReplayable || failure.bodyUntouched else { throw failure.underlying }
            }
        }
        let fresh = try await connect(request.url)
        do {
            return try await exchange(request, on: fresh)
        } catch let failure as StaleConnection {
            throw failure.underlying
        }
    }

    /// A reused connection failed before any response byte arrived.
    private struct StaleConnection: Error {
        let underlying: any Error
        let bodyUntouched: Bool
    }

    private func checkOut(_ url: HTTPURL) -> PooledConnection? {
        let now = ContinuousClock.now
        var expired: [PooledConnection] = []
        defer { for connection in expired { connection.transport.abort() } }
        return lock.withLock {
            while let connection = idle[url.poolKey]?.popLast() {
                if now - connection.idleSince < configuration.idleConnectionTimeout { return connection }
                expired.append(connection)
            }
            return nil
        }
    }

    private func checkIn(_ connection: PooledConnection, key: String) {
        connection.idleSince = .now
        let kept: Bool = lock.withLock {
            var list = idle[key] ?? []
            guard list.count < configuration.maxIdleConnectionsPerServer else { return false }
            list.append(connection)
            idle[key] = list
            return true
        }
        if !kept {
            Task { try? await connection.transport.close(deadline: .now + .seconds(1)) }
        }
    }

    private func connect(_ url: HTTPURL) async throws -> PooledConnection {
        let deadline = ContinuousClock.now + configuration.connectTimeout
        let transport: any HTTPTransport
        if url.usesTLS {
            guard let tls = configuration.tls else {
                throw HTTPError.invalidURL(url.description, reason: "https needs a client TLS context in HTTPClient.Configuration.tls")
            }
            transport = try await TLSConnection.connect(to: url.address, context: tls, deadline: deadline, group: group)
        } else {
            transport = try await Connection.connect(to: url.address, deadline: deadline, group: group)
        }
        lock.withLock { openedConnections += 1 }
        return PooledConnection(
            transport: transport,
            reader: HTTPStreamReader(parser: HTTPParser(kind: .response, limits: configuration.limits), transport: transport, readChunkBytes: configuration.readChunkBytes),
            reused: false
        )
    }

    /// One request/response on one connection.
    private func exchange(_ request: HTTPClientRequest, on connection: PooledConnection) async throws -> HTTPClientResponse {
        let transport = connection.transport
        let reader = connection.reader
        let reused = connection.reused
        connection.reused = true
        var headers = request.headers
        if !headers.contains(name: "Host") { headers.add(name: "Host", value: request.url.host) }
        let knownLength = request.body.knownLength
        var chunked = false
        if let knownLength {
            if knownLength > 0 || ![HTTPMethod.get, .head, .delete, .options].contains(request.method) {
                headers.replaceOrAdd(name: "Content-Length", value: String(knownLength))
            }
        } else {
            headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
            chunked = true
        }
        let hasBody = knownLength != 0
        let expectContinue = hasBody && headers.contains(name: "Expect", token: "100-continue")
        let requestHead = HTTPRequestHead(method: request.method, target: request.url.target, version: .http1_1, headers: headers)
        reader.parser.expectResponse(to: request.method)

        var bodyTouched = false
        var finalHead: HTTPResponseHead?
        do {
            var bytes = HTTPSerializer.encode(requestHead)
            if !expectContinue, case .bytes(let body) = request.body.storage {
                bytes.append(contentsOf: body)
                bodyTouched = true
            }
            try await transport.write(bytes, deadline: .now + configuration.writeTimeout)
            var sendBody = hasBody && !bodyTouched
            if expectContinue {
                // Wait briefly for 100 Continue or an early final answer.
                let waitUntil = ContinuousClock.now + configuration.expectContinueTimeout
                do {
                    if case .response(let head)? = try await reader.nextEvent(deadline: { waitUntil }) {
                        if head.status.isInformational {
                            // 100 Continue (or another 1xx): go on.
                        } else {
                            finalHead = head
                            sendBody = false
                        }
                    }
                } catch let error as NetError {
                    guard case .timedOut = error else { throw error }
                }
            }
            if sendBody {
                bodyTouched = true
                try await send(request.body, chunked: chunked, transport: transport)
            }
        } catch {
            transport.abort()
            if reused, finalHead == nil, reader.parser.bufferedByteCount == 0 {
                throw StaleConnection(underlying: error, bodyUntouched: !bodyTouched)
            }
            throw error
        }

        // The final response head (skipping 1xx).
        let responseDeadline = ContinuousClock.now + configuration.responseTimeout
        do {
            while finalHead == nil {
                let event: HTTPParserEvent?
                do {
                    event = try await reader.nextEvent { responseDeadline }
                } catch let error as NetError {
                    if case .timedOut = error {
                        throw HTTPError.responseTimedOut(url: request.url.description, timeout: configuration.responseTimeout)
                    }
                    throw error
                }
                switch event {
                case .response(let head) where head.status.isInformational:
                    continue
                case .response(let head):
                    finalHead = head
                case nil:
                    throw HTTPError.connectionClosed("before the response to \(request.method) \(request.url)")
                default:
                    preconditionFailure("body event before a response head")
                }
            }
        } catch {
            let nothingReceived = reader.parser.isIdle
            transport.abort()
            var timedOut = false
            if case HTTPError.responseTimedOut? = error as? HTTPError { timedOut = true }
            if reused, nothingReceived, !timedOut {
                throw StaleConnection(underlying: error, bodyUntouched: !bodyTouched)
            }
            throw error
        }
        let head = finalHead!
        // An early final answer to `Expect: 100-continue` left our body unsent:
        // the connection cannot carry another request.
        let reusable = head.keepAlive && !(expectContinue && !bodyTouched)
        let framing = reader.parser.bodyFraming ?? .none
        let source = HTTPIncomingBodySource(reader: reader, framing: framing, readTimeout: configuration.bodyReadTimeout)
        let key = request.url.poolKey
        source.onEnd = { [weak self] in
            guard reusable, let self else {
                Task { try? await transport.close(deadline: .now + .seconds(1)) }
                return
            }
            self.checkIn(connection, key: key)
        }
        source.onAbandon = { transport.abort() }
        if framing == .none {
            // Nothing to read but the end: release the connection now.
            _ = try await source.nextChunk()
        }
        return HTTPClientResponse(head: head, body: HTTPIncomingBody(source: source), url: request.url)
    }

    private func send(_ body: HTTPBody, chunked: Bool, transport: any HTTPTransport) async throws {
        switch body.storage {
        case .bytes(let bytes):
            try await transport.write(bytes, deadline: .now + configuration.writeTimeout)
        case .stream(let length, let producer):
            let writer = HTTPBodyWriter(transport: transport, chunked: chunked, declaredLength: length, writeTimeout: configuration.writeTimeout)
            try await producer(writer)
            try await writer.finish()
        }
    }
}

extension HTTPClient {
    /// What the server answered to an upgrade request.
    public enum UpgradeOutcome: Sendable {
        /// `101 Switching Protocols`: the connection now carries the new protocol.
        case switched(HTTPResponseHead, HTTPUpgradedStream)
        /// Any other final answer, with its whole body (an error, usually).
        case refused(HTTPResponseHead, [UInt8])
    }

    /// The most of a refused upgrade's body that is read.
    static let maxRefusalBodyBytes = 1 << 20

    /// Sends `request` with `Connection: Upgrade` and `Upgrade: protocolName`
    /// on a connection of its own (never pooled) and waits for the answer.
    public func upgrade(_ request: HTTPClientRequest, to protocolName: String) async throws -> UpgradeOutcome {
        let deadline = ContinuousClock.now + configuration.connectTimeout
        let transport: any HTTPTransport
        if request.url.usesTLS {
            guard let tls = configuration.tls else {
                throw HTTPError.invalidURL(request.url.description, reason: "https needs a client TLS context in HTTPClient.Configuration.tls")
            }
            transport = try await TLSConnection.connect(to: request.url.address, context: tls, deadline: deadline, group: group)
        } else {
            transport = try await Connection.connect(to: request.url.address, deadline: deadline, group: group)
        }
        do {
            var headers = request.headers
            if !headers.contains(name: "Host") { headers.add(name: "Host", value: request.url.host) }
            headers.replaceOrAdd(name: "Connection", value: "Upgrade")
            headers.replaceOrAdd(name: "Upgrade", value: protocolName)
            guard case .bytes(let body) = request.body.storage else {
                throw HTTPError.bodyNotReplayable("an upgrade request's body must be in memory")
            }
            headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
            let head = HTTPRequestHead(method: request.method, target: request.url.target, version: .http1_1, headers: headers)
            try await transport.write(HTTPSerializer.encode(head) + body, deadline: .now + configuration.writeTimeout)
            var parser = HTTPParser(kind: .response, limits: configuration.limits)
            parser.expectResponse(to: request.method)
            let responseDeadline = ContinuousClock.now + configuration.responseTimeout
            var final: HTTPResponseHead?
            var collected: [UInt8] = []
            var peerClosed = false
            while true {
                if let event = try parser.next() {
                    switch event {
                    case .response(let response) where response.status == .switchingProtocols:
                        return .switched(response, HTTPUpgradedStream(transport: transport, leftover: parser.takeBufferedBytes()))
                    case .response(let response) where response.status.isInformational:
                        continue
                    case .response(let response):
                        final = response
                    case .body(let bytes):
                        if collected.count + bytes.count <= Self.maxRefusalBodyBytes { collected += bytes }
                    case .end:
                        transport.abort()
                        return .refused(final!, collected)
                    case .request:
                        preconditionFailure("a response parser produced a request")
                    }
                    continue
                }
                if peerClosed {
                    transport.abort()
                    if let final { return .refused(final, collected) }
                    throw HTTPError.connectionClosed("before the response to \(request.method) \(request.url)")
                }
                let bytes: [UInt8]
                do {
                    bytes = try await transport.read(maxBytes: configuration.readChunkBytes, deadline: responseDeadline)
                } catch let error as NetError {
                    if case .timedOut = error {
                        throw HTTPError.responseTimedOut(url: request.url.description, timeout: configuration.responseTimeout)
                    }
                    throw error
                }
                if bytes.isEmpty {
                    peerClosed = true
                    parser.finishInput()
                } else {
                    parser.feed(bytes)
                }
            }
        } catch {
            transport.abort()
            throw error
        }
    }
}

import Net

/// One HTTP/1.1 request and its response on the calling thread, over a
/// ``Net/BlockingSocket``, with no event loop or task: for a CLI that makes
/// one call and exits (`shoal container run` streams a container's output and
/// its exit this way). The body is handed over as it arrives. Plain HTTP
/// only (a local Unix socket); TLS and keep-alive need ``HTTPClient``.
public enum HTTPBlockingExchange {
    /// Bytes asked of the socket per read.
    static let readChunkBytes = 64 * 1024

    /// Parses a canned chunked response, discarding it, the way
    /// ``perform(_:_:to:host:body:contentType:responseTimeout:bodyReadTimeout:watching:onSent:onHead:onBody:)``
    /// parses its answer: the first parse in a process pays one-time costs
    /// (type metadata, code paged in) that a caller waiting for a slow
    /// answer can pay while it waits (its `onSent`), not once the answer came.
    /// True when the canned response parsed to its end (a test checks it).
    @discardableResult
    public static func prepareResponseReading() -> Bool {
        var parser = HTTPParser(kind: .response, limits: streamingLimits)
        parser.expectResponse(to: .post)
        parser.feed(Array("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n".utf8))
        var body: [UInt8] = []
        while let event = try? parser.next() {
            switch event {
            case .body(let bytes): body += bytes
            case .end: return body == Array("{}".utf8)
            default: continue
            }
        }
        return false
    }

    /// The request's head, the bytes ``HTTPSerializer`` writes for these
    /// fields, written without ``HTTPHeaders``: the CLI's `run` then meets the
    /// headers' storage type (and pays its metadata) only in the answer,
    /// after its request is out.
    static func requestHead(_ method: HTTPMethod, _ target: String, host: String, contentType: String?, contentLength: Int?) -> [UInt8] {
        var head = method.rawValue + " " + target + " " + HTTPVersion.http1_1.description + "\r\n"
        head += "Host: " + host + "\r\n"
        if let contentType { head += "Content-Type: " + contentType + "\r\n" }
        if let contentLength { head += "Content-Length: " + String(contentLength) + "\r\n" }
        precondition(!(host + (contentType ?? "")).utf8.contains { $0 == 0x0D || $0 == 0x0A },
                     "header field \(host.debugDescription) or \(String(describing: contentType)) would break the message framing")
        return Array((head + "\r\n").utf8)
    }

    /// The body streams: no limit on its size.
    static var streamingLimits: HTTPParserLimits {
        var limits = HTTPParserLimits()
        limits.maxBodyBytes = nil
        return limits
    }

    /// Sends `method target` with `body` (JSON when `contentType` says so) to
    /// `address`, calls `onHead` with the final response head, then `onBody`
    /// with each piece of the body until the body ends or `onBody` returns
    /// false (the rest is not read). The head must come within
    /// `responseTimeout`, then each read of the body within `bodyReadTimeout`
    /// (``HTTPClient/Configuration``'s meanings; nil: no limit). `watch`
    /// is served while waiting for the response (``Net/BlockingSocket/Watch``).
    /// `onSent` runs once the request is out, before the wait for its answer.
    ///
    /// - Throws: the socket's `SystemError`s, ``HTTPParseError`` for a
    ///   malformed response or a body cut short, ``HTTPError/connectionClosed(_:)``
    ///   when the server closes before the head, ``HTTPError/responseTimedOut(url:timeout:)``,
    ///   ``Net/NetError/timedOut(operation:address:)`` for a body read, and
    ///   whatever the callbacks throw.
    public static func perform(_ method: HTTPMethod, _ target: String, to address: SocketAddress, host: String,
                               body: [UInt8]?, contentType: String? = nil,
                               responseTimeout: Duration? = nil, bodyReadTimeout: Duration? = nil, watching watch: BlockingSocket.Watch? = nil,
                               onSent: () -> Void = {}, onHead: (HTTPResponseHead) throws -> Void, onBody: ([UInt8]) throws -> Bool) throws {
        var request = requestHead(method, target, host: host, contentType: contentType, contentLength: body?.count)
        if let body { request += body }
        let socket = try BlockingSocket(connectingTo: address)
        try socket.write(request)
        onSent()

        var parser = HTTPParser(kind: .response, limits: streamingLimits)
        parser.expectResponse(to: method)
        var inputEnded = false
        var headArrived = false
        let responseDeadline = responseTimeout.map { ContinuousClock.now + $0 }
        while true {
            while let event = try parser.next() {
                switch event {
                case .response(let head) where head.status.isInformational:
                    continue
                case .response(let head):
                    headArrived = true
                    try onHead(head)
                case .body(let bytes):
                    guard try onBody(bytes) else { return }
                case .end:
                    return
                case .request:
                    preconditionFailure("a response parser produced a request")
                }
            }
            guard !inputEnded else {
                throw HTTPError.connectionClosed("before the response to \(method) \(target) ended")
            }
            let bytes: [UInt8]
            if headArrived {
                bytes = try socket.read(maxBytes: readChunkBytes, timeout: bodyReadTimeout, watching: watch)
            } else {
                do {
                    bytes = try socket.read(maxBytes: readChunkBytes, timeout: responseDeadline.map { max($0 - ContinuousClock.now, .zero) },
                                            watching: watch)
                } catch NetError.timedOut {
                    throw HTTPError.responseTimedOut(url: "\(address)\(target)", timeout: responseTimeout!)
                }
            }
            if bytes.isEmpty {
                parser.finishInput()  // an until-close body ends here; anything else was cut short
                inputEnded = true
            } else {
                parser.feed(bytes)
            }
        }
    }
}

/// A body arriving from the peer (a request body in a handler, a response
/// body in a client), as an async sequence of byte chunks in order.
///
/// Bytes are read from the socket only when the consumer asks for the next
/// chunk, so a slow consumer slows the sender (TCP back-pressure) and a
/// 1 GiB upload never sits in memory. Iterate once.
public struct HTTPIncomingBody: AsyncSequence, Sendable {
    public typealias Element = [UInt8]

    let source: HTTPIncomingBodySource

    init(source: HTTPIncomingBodySource) {
        self.source = source
    }

    /// A body that is already complete (tests, synthetic requests).
    public static func bytes(_ bytes: [UInt8]) -> HTTPIncomingBody {
        HTTPIncomingBody(source: HTTPIncomingBodySource(fixed: bytes))
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let source: HTTPIncomingBodySource

        public mutating func next() async throws -> [UInt8]? {
            try await source.nextChunk()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(source: source)
    }

    /// Reads the whole body into memory, refusing more than `maxBytes`.
    public func collect(upTo maxBytes: Int) async throws -> [UInt8] {
        var collected: [UInt8] = []
        for try await chunk in self {
            guard collected.count + chunk.count <= maxBytes else { throw HTTPError.bodyTooLarge(limitBytes: maxBytes) }
            collected.append(contentsOf: chunk)
        }
        return collected
    }

    /// Trailer fields of a chunked body; available once iteration ended.
    public var trailers: HTTPHeaders { source.trailers }

    /// The length the peer declared (Content-Length), nil when chunked or unknown.
    public var declaredLength: Int? { source.declaredLength }
}

/// The state behind an ``HTTPIncomingBody``; shared by the connection loop,
/// which checks after the handler whether the body was read to its end.
final class HTTPIncomingBodySource: @unchecked Sendable {
    private let reader: HTTPStreamReader?
    private var fixed: [UInt8]?
    private let readTimeout: Duration
    /// Run before the first read (a server's `100 Continue`).
    var beforeFirstRead: (() async throws -> Void)?
    /// Run once when the body ended cleanly (a client returns the connection to its pool).
    var onEnd: (() -> Void)?
    /// Run if the body is dropped unfinished (a client resets the connection).
    var onAbandon: (() -> Void)?
    let declaredLength: Int?
    private(set) var started = false
    private(set) var finished = false
    private(set) var trailers = HTTPHeaders()
    private var failure: (any Error)?

    init(reader: HTTPStreamReader, framing: HTTPBodyFraming, readTimeout: Duration) {
        self.reader = reader
        self.readTimeout = readTimeout
        if case .length(let length) = framing { declaredLength = length } else { declaredLength = nil }
    }

    init(fixed bytes: [UInt8]) {
        reader = nil
        fixed = bytes
        readTimeout = .seconds(0)
        declaredLength = bytes.count
    }

    deinit {
        if !finished { onAbandon?() }
    }

    func nextChunk() async throws -> [UInt8]? {
        if finished { return nil }
        guard let reader else {
            finished = true
            defer { fixed = nil }
            return fixed.flatMap { $0.isEmpty ? nil : $0 }
        }
        if let failure { throw failure }
        if let hook = beforeFirstRead {
            beforeFirstRead = nil
            try await hook()
        }
        started = true
        do {
            let timeout = readTimeout
            let event = try await reader.nextEvent { .now + timeout }
            switch event {
            case .body(let bytes):
                return bytes
            case .end(let trailers):
                self.trailers = trailers
                finished = true
                onEnd?()
                onEnd = nil
                return nil
            case nil:
                throw HTTPParseError.unexpectedEndOfStream("before the body ended")
            case .request, .response:
                preconditionFailure("a message head inside a body: the parser emits .end first")
            }
        } catch {
            failure = error
            throw error
        }
    }

    /// Reads and discards the rest of the body, up to `maxBytes`; true if it ended.
    func drain(maxBytes: Int) async throws -> Bool {
        var drained = 0
        while let chunk = try await nextChunk() {
            drained += chunk.count
            if drained > maxBytes { return false }
        }
        return true
    }

    var hasFailed: Bool { failure != nil }
}

/// An outgoing body (a server's response, a client's request): bytes in
/// memory, or a producer that streams them through an ``HTTPBodyWriter``.
///
/// With a known length the message carries Content-Length; a stream of
/// unknown length goes chunked (HTTP/1.1 peers) or until close (HTTP/1.0).
public struct HTTPBody: Sendable {
    public typealias Producer = @Sendable (HTTPBodyWriter) async throws -> Void

    enum Storage: Sendable {
        case bytes([UInt8])
        case stream(length: Int?, producer: Producer)
    }

    let storage: Storage

    public static let empty = HTTPBody(storage: .bytes([]))

    public static func bytes(_ bytes: [UInt8]) -> HTTPBody { HTTPBody(storage: .bytes(bytes)) }

    public static func string(_ text: String) -> HTTPBody { HTTPBody(storage: .bytes(Array(text.utf8))) }

    /// A body written by `producer`. With `length`, the producer must write
    /// exactly that many bytes (else ``HTTPError/bodyLengthMismatch(declaredBytes:actualBytes:)``).
    public static func stream(length: Int? = nil, _ producer: @escaping Producer) -> HTTPBody {
        precondition(length.map { $0 >= 0 } ?? true, "a body length cannot be negative, got \(length!)")
        return HTTPBody(storage: .stream(length: length, producer: producer))
    }

    /// The length if known before sending.
    public var knownLength: Int? {
        switch storage {
        case .bytes(let bytes): return bytes.count
        case .stream(let length, _): return length
        }
    }

    /// True for in-memory bodies, which can be sent again (retry, redirect).
    public var isReplayable: Bool {
        if case .bytes = storage { return true }
        return false
    }
}

/// Where a streaming body's producer writes. Each `write` waits while the
/// connection's send buffer is full, so a producer never runs ahead of the
/// network by more than the buffer.
public final class HTTPBodyWriter: @unchecked Sendable {
    private let transport: any HTTPTransport
    private let chunked: Bool
    private let declaredLength: Int?
    private let writeTimeout: Duration
    private(set) var writtenBytes = 0
    /// Trailer fields sent after a chunked body (ignored otherwise).
    public var trailers = HTTPHeaders()

    init(transport: any HTTPTransport, chunked: Bool, declaredLength: Int?, writeTimeout: Duration) {
        self.transport = transport
        self.chunked = chunked
        self.declaredLength = declaredLength
        self.writeTimeout = writeTimeout
    }

    /// Sends the next piece of the body.
    public func write(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        if let declaredLength, writtenBytes + bytes.count > declaredLength {
            throw HTTPError.bodyLengthMismatch(declaredBytes: declaredLength, actualBytes: writtenBytes + bytes.count)
        }
        writtenBytes += bytes.count
        try await transport.write(chunked ? HTTPSerializer.encodeChunk(bytes) : bytes, deadline: .now + writeTimeout)
    }

    /// Ends the body: the last chunk and trailers, or a length check.
    func finish() async throws {
        if chunked {
            try await transport.write(HTTPSerializer.encodeLastChunk(trailers: trailers), deadline: .now + writeTimeout)
        } else if let declaredLength, writtenBytes != declaredLength {
            throw HTTPError.bodyLengthMismatch(declaredBytes: declaredLength, actualBytes: writtenBytes)
        }
    }
}

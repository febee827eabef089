/// What ``HTTPParser/next()`` found in the bytes fed so far.
public enum HTTPParserEvent: Sendable, Equatable {
    /// A complete request head (request parsers).
    case request(HTTPRequestHead)
    /// A complete response head (response parsers); 1xx heads are followed by
    /// another head for the same request.
    case response(HTTPResponseHead)
    /// The next piece of the body, in order, never empty.
    case body([UInt8])
    /// The message is complete; trailers are empty unless a chunked body sent some.
    case end(trailers: HTTPHeaders)
}

/// How the body of the current message is delimited (RFC 9112 §6.3).
public enum HTTPBodyFraming: Sendable, Equatable {
    /// No body at all.
    case none
    /// Exactly this many bytes.
    case length(Int)
    /// Chunked transfer coding.
    case chunked
    /// Everything until the peer closes (responses only).
    case untilClose
}

/// Why bytes from a peer are not an acceptable HTTP/1.1 message. Each case
/// names what was wrong; ``status`` is the response a server sends before
/// closing the connection (a parse error always ends the connection: after
/// one, message boundaries can no longer be trusted).
public enum HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The request or status line does not have the RFC 9112 shape.
    case malformedStartLine(String)
    /// A version other than HTTP/1.0 or HTTP/1.1.
    case unsupportedVersion(String)
    /// The request line is longer than the limit.
    case requestLineTooLong(limitBytes: Int)
    /// One header or trailer field line is longer than the limit.
    case fieldLineTooLong(limitBytes: Int)
    /// The whole head (start line and fields) is larger than the limit.
    case headTooLarge(limitBytes: Int)
    /// More header or trailer fields than the limit.
    case tooManyFields(limit: Int)
    /// A field line that is not `name: value` with a token name and clean value.
    case malformedField(String)
    /// A field line starting with whitespace (obs-fold, RFC 9112 §5.2): refused.
    case obsoleteLineFolding
    /// A line ended by LF alone, or a CR not followed by LF. RFC 9112 §2.2
    /// lets a recipient accept a bare LF; Shoal refuses it because parsers
    /// disagreeing about line ends is a request-smuggling vector.
    case bareLineTerminator
    /// Both Content-Length and Transfer-Encoding (RFC 9112 §6.1: a smuggling pattern).
    case contentLengthWithTransferEncoding
    /// Several Content-Length values that differ.
    case conflictingContentLength([String])
    /// A Content-Length that is not a non-negative decimal number.
    case invalidContentLength(String)
    /// A transfer coding other than `chunked` (e.g. gzip): not implemented.
    case unsupportedTransferCoding(String)
    /// Transfer-Encoding whose final coding is not `chunked`, or on HTTP/1.0.
    case chunkedNotFinal(String)
    /// A chunk size line or chunk terminator that is not well formed.
    case malformedChunk(String)
    /// The body is larger than the route's limit.
    case bodyTooLarge(limitBytes: Int)
    /// An HTTP/1.1 request without exactly one Host field (RFC 9112 §3.2).
    case invalidHost(String)
    /// A method the server does not implement (CONNECT).
    case unsupportedMethod(String)
    /// The stream ended inside a message.
    case unexpectedEndOfStream(String)

    /// The status a server answers with.
    public var status: HTTPStatus {
        switch self {
        case .requestLineTooLong: return .uriTooLong
        case .fieldLineTooLong, .headTooLarge, .tooManyFields: return .requestHeaderFieldsTooLarge
        case .bodyTooLarge: return .contentTooLarge
        case .unsupportedTransferCoding, .unsupportedMethod: return .notImplemented
        case .unsupportedVersion: return .httpVersionNotSupported
        default: return .badRequest
        }
    }

    public var description: String {
        switch self {
        case .malformedStartLine(let line):
            return "malformed start line \(line.debugDescription): expected `METHOD /target HTTP/1.1` or `HTTP/1.1 200 Reason`"
        case .unsupportedVersion(let version):
            return "unsupported protocol version \(version.debugDescription): speak HTTP/1.1 or HTTP/1.0"
        case .requestLineTooLong(let limit):
            return "request line longer than \(limit) bytes: shorten the URL (move data into the body)"
        case .fieldLineTooLong(let limit):
            return "a header field line is longer than \(limit) bytes: send smaller header values"
        case .headTooLarge(let limit):
            return "request head larger than \(limit) bytes: send fewer or smaller header fields"
        case .tooManyFields(let limit):
            return "more than \(limit) header fields: send fewer fields"
        case .malformedField(let reason):
            return "malformed header field: \(reason)"
        case .obsoleteLineFolding:
            return "header field continued on a line starting with whitespace (obsolete line folding) is refused: send each field on one line"
        case .bareLineTerminator:
            return "line ended by a bare LF or CR: end every line of the head and every chunk line with CRLF"
        case .contentLengthWithTransferEncoding:
            return "both Content-Length and Transfer-Encoding are present (a request smuggling pattern): send exactly one"
        case .conflictingContentLength(let values):
            return "differing Content-Length values \(values): send exactly one"
        case .invalidContentLength(let value):
            return "Content-Length \(value.debugDescription) is not a non-negative decimal number"
        case .unsupportedTransferCoding(let value):
            return "transfer coding \(value.debugDescription) is not implemented: use `Transfer-Encoding: chunked` alone"
        case .chunkedNotFinal(let value):
            return "Transfer-Encoding \(value.debugDescription) does not end in chunked (or the request is HTTP/1.0): the body length cannot be determined"
        case .malformedChunk(let reason):
            return "malformed chunked body: \(reason)"
        case .bodyTooLarge(let limit):
            return "body larger than \(limit) bytes, the limit for this resource: send a smaller body"
        case .invalidHost(let reason):
            return "invalid Host: \(reason); an HTTP/1.1 request carries exactly one Host field"
        case .unsupportedMethod(let method):
            return "method \(method) is not implemented by this server"
        case .unexpectedEndOfStream(let place):
            return "the connection ended \(place): the message is incomplete"
        }
    }
}

/// What went wrong while exchanging HTTP messages (beyond malformed bytes,
/// which are ``HTTPParseError``), and what to do about it.
public enum HTTPError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A body wrote more or fewer bytes than its declared Content-Length.
    case bodyLengthMismatch(declaredBytes: Int, actualBytes: Int)
    /// A URL the client cannot use.
    case invalidURL(String, reason: String)
    /// The peer closed the connection before a complete response (or request) arrived.
    case connectionClosed(String)
    /// No response head within the client's response timeout.
    case responseTimedOut(url: String, timeout: Duration)
    /// A redirect chain longer than the configured maximum.
    case tooManyRedirects(url: String, limit: Int)
    /// A redirect response without a usable Location.
    case invalidRedirect(url: String, location: String?)
    /// A request body that was already consumed cannot be sent again (retry or redirect).
    case bodyNotReplayable(String)
    /// The body was already read by someone else.
    case bodyAlreadyConsumed
    /// `collect(upTo:)` met more bytes than allowed.
    case bodyTooLarge(limitBytes: Int)

    public var description: String {
        switch self {
        case .bodyLengthMismatch(let declared, let actual):
            return "body has \(actual) bytes but Content-Length declared \(declared): make the stream produce exactly the declared length"
        case .invalidURL(let url, let reason):
            return "cannot use URL \(url.debugDescription): \(reason)"
        case .connectionClosed(let context):
            return "the peer closed the connection \(context): retry on a new connection if the request is idempotent"
        case .responseTimedOut(let url, let timeout):
            return "no response from \(url) within \(timeout): the server is slow or down; retry later or raise the timeout"
        case .tooManyRedirects(let url, let limit):
            return "more than \(limit) redirects starting at \(url): the server may be looping"
        case .invalidRedirect(let url, let location):
            return "redirect from \(url) with unusable Location \(location.debugDescription)"
        case .bodyNotReplayable(let url):
            return "the request body for \(url) is a one-shot stream and cannot be sent twice: pass bytes to allow retries and redirects"
        case .bodyAlreadyConsumed:
            return "the body was already read: iterate a body once"
        case .bodyTooLarge(let limit):
            return "body larger than \(limit) bytes: stream it instead of collecting it"
        }
    }
}

/// Why a call ended, as it travels on the wire (one byte). The numbers follow
/// gRPC's status codes where one exists, so operators can read them the same way.
public enum RPCStatusCode: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case ok = 0
    /// The caller cancelled the call (its task was cancelled or it went away).
    case cancelled = 1
    /// The handler failed with an error that is not an `RPCError`.
    case unknown = 2
    /// The request's payload is not what the method expects.
    case invalidArgument = 3
    /// The call's deadline passed before it completed.
    case deadlineExceeded = 4
    case notFound = 5
    case alreadyExists = 6
    /// The caller's certificate role may not call this method, or a secret
    /// (a join token) was refused.
    case permissionDenied = 7
    /// A limit was hit: too many calls in flight, a payload over the frame limit.
    case resourceExhausted = 8
    case failedPrecondition = 9
    /// No handler is registered under the method name.
    case unimplemented = 12
    /// A bug on the server side.
    case `internal` = 13
    /// The connection closed or could not be used; retry on a new one.
    case unavailable = 14
    /// The caller has no certificate and the method needs one.
    case unauthenticated = 16
    /// The peer broke the framing or the envelope format; the connection was closed.
    case protocolViolation = 100

    public var description: String {
        switch self {
        case .ok: return "ok"
        case .cancelled: return "cancelled"
        case .unknown: return "unknown"
        case .invalidArgument: return "invalid argument"
        case .deadlineExceeded: return "deadline exceeded"
        case .notFound: return "not found"
        case .alreadyExists: return "already exists"
        case .permissionDenied: return "permission denied"
        case .resourceExhausted: return "resource exhausted"
        case .failedPrecondition: return "failed precondition"
        case .unimplemented: return "unimplemented"
        case .internal: return "internal error"
        case .unavailable: return "unavailable"
        case .unauthenticated: return "unauthenticated"
        case .protocolViolation: return "protocol violation"
        }
    }
}

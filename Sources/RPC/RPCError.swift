/// Why a call failed, on either side: what went wrong (`code`, `message`)
/// and what to do about it (`hint`).
///
/// A handler throws one to end its call with that status; any other error a
/// handler throws reaches the caller as `.unknown` with the error's
/// description. The client throws one for every failure, local (deadline,
/// cancellation, a closed connection) or remote (the status the server sent).
///
/// A struct rather than an enum because the same value crosses the wire:
/// code, message and hint are exactly what the peer sent, so nothing is lost
/// or invented in translation (grpc-swift 2 made the same choice).
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: RPCStatusCode
    /// The method of the call that failed ("" for connection-wide failures).
    public var method: String
    /// What went wrong, with its context.
    public var message: String
    /// What the caller can do next.
    public var hint: String

    public init(_ code: RPCStatusCode, method: String = "", message: String, hint: String = "") {
        precondition(code != .ok, "an RPCError cannot carry status ok (method \(method): \(message))")
        self.code = code
        self.method = method
        self.message = message
        self.hint = hint
    }

    public var description: String {
        let prefix = method.isEmpty ? "RPC" : "RPC \(method)"
        let tail = hint.isEmpty ? "" : "; \(hint)"
        return "\(prefix) failed (\(code)): \(message)\(tail)"
    }

    // MARK: Errors the RPC layer itself produces

    static func deadlineExceeded(method: String, timeout: Duration?) -> RPCError {
        let after = timeout.map { " after \($0)" } ?? ""
        return RPCError(.deadlineExceeded, method: method, message: "no answer before the deadline\(after)",
                        hint: "the server is slow or overloaded: retry with a later deadline, or check the server")
    }

    static func cancelled(method: String) -> RPCError {
        RPCError(.cancelled, method: method, message: "the call was cancelled by the caller",
                 hint: "nothing to do unless the cancellation was unexpected")
    }

    static func connectionClosed(method: String, reason: String) -> RPCError {
        RPCError(.unavailable, method: method, message: "the connection closed before the call completed: \(reason)",
                 hint: "open a new connection and retry if the method is safe to repeat")
    }

    static func unknownMethod(_ method: String) -> RPCError {
        RPCError(.unimplemented, method: method, message: "no method named \"\(method)\" is registered on this server",
                 hint: "check the method name and that the server runs a version that serves it")
    }

    static func permissionDenied(method: String, caller: String, allowed: RPCAccess) -> RPCError {
        RPCError(.permissionDenied, method: method,
                 message: "\(caller) may not call \(method): it requires \(allowed)",
                 hint: "call it with a certificate of the required role (join as a manager, or ask a manager)")
    }

    static func payloadTooLarge(method: String, bytes: Int, maxBytes: Int) -> RPCError {
        RPCError(.resourceExhausted, method: method,
                 message: "payload of \(bytes) bytes exceeds the limit of \(maxBytes) bytes per message",
                 hint: "split the payload (stream it in parts) or raise maxFrameBytes on both ends")
    }
}

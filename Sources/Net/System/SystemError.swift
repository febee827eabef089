#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call, the `errno` it left, and the path or
/// address it worked on when there is one.
///
/// Thrown only by ``Syscall/run(_:path:wouldBlock:_:)``, the one place that
/// turns a `-1` return into a Swift error, so every message reads the same way.
public struct SystemError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The C function that failed, e.g. `"connect"`.
    public let call: String
    /// The `errno` value it left.
    public let errno: Int32
    /// The file path or socket address involved, if any.
    public let path: String?

    public init(call: String, errno: Int32, path: String? = nil) {
        self.call = call
        self.errno = errno
        self.path = path
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        let subject = path.map { " (\($0))" } ?? ""
        return "\(call)\(subject) failed: \(reason) [errno \(errno)]\(SystemError.advice(errno))"
    }

    private static func advice(_ code: Int32) -> String {
        switch code {
        case EMFILE, ENFILE: return "; raise the open-file limit (ulimit -n) or close idle connections"
        case EADDRINUSE: return "; another process holds this address: pick another port or stop it"
        case ECONNREFUSED: return "; nothing listens there: check the address and that the peer runs"
        case EACCES, EPERM: return "; check permissions of the path or run with the needed privilege"
        default: return ""
        }
    }
}

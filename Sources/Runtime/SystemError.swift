#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call, the `errno` it left, and the path it
/// worked on when there is one.
///
/// Thrown only by ``Syscall/run(_:path:_:)`` and by the translation of a
/// child's ``RuntimeError/containerSetupFailed(_:)`` report, so every message
/// reads the same way. (Net has its own `SystemError`; Runtime sits on
/// CContainer only, so it keeps this one. Qualify as `Runtime.SystemError`
/// where both modules are imported.)
public struct SystemError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The C function that failed, e.g. `"mount"`.
    public let call: String
    /// The `errno` value it left.
    public let errno: Int32
    /// The file path involved, if any.
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
        case EACCES, EPERM: return "; the runtime must run as root with CAP_SYS_ADMIN"
        case ENOSPC: return "; the kernel ran out of namespaces, cgroups or disk space"
        case EBUSY: return "; something still uses it: retry once its processes have exited"
        default: return ""
        }
    }
}

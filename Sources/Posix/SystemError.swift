#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call, the `errno` it left, and the path or
/// address it worked on when there is one.
///
/// Thrown by ``Syscall`` (the one place that turns a `-1` return into a Swift
/// error) and by code translating a child process's errno report, so every
/// message reads the same way. Net, Runtime and Images all use this type.
public struct SystemError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The C function that failed, e.g. `"connect"` or `"mount"`.
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

    /// What to do next, for the errors a user can act on.
    private static func advice(_ code: Int32) -> String {
        switch code {
        case EMFILE, ENFILE: return "; raise the open-file limit (ulimit -n) or close idle connections"
        case EADDRINUSE: return "; another process holds this address: pick another port or stop it"
        case ECONNREFUSED: return "; nothing listens there: check the address and that the peer runs"
        case EACCES, EPERM: return "; check permissions of the path, or run as root (containers need CAP_SYS_ADMIN)"
        case ENOSPC, EDQUOT: return "; the disk, or the kernel's namespaces or cgroups, ran out: free some and retry"
        case EBUSY: return "; something still uses it: retry once its processes have exited"
        case EROFS: return "; the file system is read-only: remount it read-write"
        case EIO: return "; the disk reported an I/O error: check the device before trusting it"
        default: return ""
        }
    }
}

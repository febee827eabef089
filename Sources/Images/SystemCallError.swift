#if canImport(Glibc)
import Glibc
#endif

/// A failed system call in Images: which call, the `errno` it left, and the
/// path it worked on when there is one.
///
/// Thrown only by ``SystemCall``, the one place in Images that turns a `-1`
/// return into a Swift error. (Net has its own `SystemError`; Images does not
/// depend on Net, so it carries this twin.)
public struct SystemCallError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The C function that failed, e.g. `"openat2"`.
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
        return "\(call)\(subject) failed: \(reason) [errno \(errno)]\(Self.advice(errno))"
    }

    private static func advice(_ code: Int32) -> String {
        switch code {
        case ENOSPC, EDQUOT: return "; the file system is full: free space and retry"
        case EACCES, EPERM: return "; check permissions of the path or run with the needed privilege"
        case EMFILE, ENFILE: return "; raise the open-file limit (ulimit -n)"
        case EROFS: return "; the file system is read-only: remount it read-write"
        case EIO: return "; the disk reported an I/O error: check the device before trusting it"
        default: return ""
        }
    }
}

import Posix
import CNetLinux
#if canImport(Glibc)
import Glibc
#endif

/// Process resource limits a server must adjust before serving thousands of connections.
public enum ResourceLimits {
    /// Raises the soft limit on open descriptors to at least `wanted` (capped
    /// at the hard limit) and returns the new soft limit. Each connection costs
    /// one descriptor; a node with 2,000 peers needs more than the usual 1,024.
    @discardableResult
    public static func raiseOpenFileLimit(to wanted: Int) throws(SystemError) -> Int {
        var limit = rlimit()
        try Syscall.run("getrlimit(RLIMIT_NOFILE)") { getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) }
        let target = min(rlim_t(wanted), limit.rlim_max)
        if limit.rlim_cur < target {
            limit.rlim_cur = target
            try Syscall.run("setrlimit(RLIMIT_NOFILE)") { setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) }
        }
        return Int(limit.rlim_cur)
    }
}

import Posix
#if canImport(Glibc)
import Glibc
#endif

/// A process as the kernel knows it: pid plus start time, so a recycled
/// pid is never mistaken for the container it once was.
enum ProcessIdentity {
    /// Field 22 of /proc/PID/stat (start time in clock ticks after boot), or
    /// nil when the process is gone.
    static func startTicks(pid: Int32) -> UInt64? {
        guard let text = try? Syscall.readFile("/proc/\(pid)/stat"),
              let closing = text.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm)": field 3 is state; start time is field 22.
        let fields = text[text.index(after: closing)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }
}

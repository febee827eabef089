#if canImport(Glibc)
import Glibc
#endif

/// The one helper every system call goes through: retries `EINTR` and turns
/// a `-1` return into a ``SystemError``.
public enum Syscall {
    @discardableResult
    public static func run<Result: FixedWidthInteger>(
        _ call: String,
        path: String? = nil,
        _ body: () -> Result
    ) throws(SystemError) -> Result {
        // Cannot return nil: with wouldBlock false every -1 throws.
        try run(call, path: path, wouldBlock: false, body)!
    }

    /// For non-blocking descriptors: nil when the call would block
    /// (`EAGAIN`, `EWOULDBLOCK`, `EINPROGRESS`).
    public static func run<Result: FixedWidthInteger>(
        _ call: String,
        path: String? = nil,
        wouldBlock: Bool,
        _ body: () -> Result
    ) throws(SystemError) -> Result? {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = errno
            if code == EINTR { continue }
            if wouldBlock && (code == EAGAIN || code == EWOULDBLOCK || code == EINPROGRESS) {
                return nil
            }
            throw SystemError(call: call, errno: code, path: path)
        }
    }

    /// Like ``run(_:path:_:)``, but errors in `tolerated` are returned with
    /// the result instead of thrown.
    public static func attempt<Result: FixedWidthInteger>(
        _ call: String,
        path: String? = nil,
        tolerating tolerated: Set<Int32>,
        _ body: () -> Result
    ) throws(SystemError) -> (result: Result, errno: Int32) {
        while true {
            let result = body()
            if result != -1 { return (result, 0) }
            let code = errno
            if code == EINTR { continue }
            if tolerated.contains(code) { return (result, code) }
            throw SystemError(call: call, errno: code, path: path)
        }
    }

    /// Closes without retrying: after EINTR the descriptor is already gone on
    /// Linux, and a retry could close someone else's.
    public static func close(_ descriptor: Int32) {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// The one gate every system call in Net goes through.
///
/// It retries `EINTR` (a signal interrupted the call; nothing happened) and
/// turns any other `-1` into a ``SystemError``. Non-blocking callers pass
/// `wouldBlock: true` and get `nil` for `EAGAIN`/`EWOULDBLOCK`/`EINPROGRESS`,
/// which for them is not an error but "wait for readiness".
enum Syscall {
    @discardableResult
    static func run<Result: FixedWidthInteger>(
        _ call: String,
        path: String? = nil,
        _ body: () -> Result
    ) throws(SystemError) -> Result {
        // Cannot return nil: with wouldBlock false every -1 throws.
        try run(call, path: path, wouldBlock: false, body)!
    }

    static func run<Result: FixedWidthInteger>(
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
}

extension Syscall {
    /// Closes a descriptor exactly once. Unlike every other call this one is
    /// never retried: on Linux the descriptor is released even when `close`
    /// reports `EINTR`, and a retry could close a descriptor another thread
    /// just received. Errors are ignored for the same reason.
    static func close(_ descriptor: Int32) {
        _ = Glibc.close(descriptor)
    }
}

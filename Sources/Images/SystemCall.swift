#if canImport(Glibc)
import Glibc
#endif

/// The one gate every system call in Images goes through.
///
/// It retries `EINTR` (a signal interrupted the call; nothing happened) and
/// turns any other `-1` into a ``SystemCallError`` carrying the call, errno
/// and path.
enum SystemCall {
    @discardableResult
    static func run<Result: FixedWidthInteger>(
        _ call: String,
        path: String? = nil,
        _ body: () -> Result
    ) throws(SystemCallError) -> Result {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = errno
            if code == EINTR { continue }
            throw SystemCallError(call: call, errno: code, path: path)
        }
    }

    /// Like ``run(_:path:_:)`` but returns the errno instead of throwing when
    /// it is one of `tolerated` (e.g. `ENOENT` for "may not exist").
    static func attempt<Result: FixedWidthInteger>(
        _ call: String,
        path: String? = nil,
        tolerating tolerated: Set<Int32>,
        _ body: () -> Result
    ) throws(SystemCallError) -> (result: Result, errno: Int32) {
        while true {
            let result = body()
            if result != -1 { return (result, 0) }
            let code = errno
            if code == EINTR { continue }
            if tolerated.contains(code) { return (result, code) }
            throw SystemCallError(call: call, errno: code, path: path)
        }
    }

    /// Closes a descriptor exactly once, never retried: on Linux the
    /// descriptor is released even when `close` reports `EINTR`.
    static func close(_ descriptor: Int32) {
        _ = Glibc.close(descriptor)
    }

    /// Writes all of `buffer`, retrying short writes.
    static func writeAll(_ descriptor: Int32, _ buffer: UnsafeRawBufferPointer, path: String?) throws(SystemCallError) {
        var offset = 0
        while offset < buffer.count {
            let written = try run("write", path: path) {
                Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            }
            offset += written
        }
    }

    /// Reads up to `buffer.count` bytes; 0 means end of file.
    static func read(_ descriptor: Int32, _ buffer: UnsafeMutableRawBufferPointer, path: String?) throws(SystemCallError) -> Int {
        try run("read", path: path) { Glibc.read(descriptor, buffer.baseAddress, buffer.count) }
    }
}

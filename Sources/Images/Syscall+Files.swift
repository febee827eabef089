#if canImport(Glibc)
import Glibc
#endif
import Posix

/// The one gate every system call in Images goes through.
///
/// It retries `EINTR` (a signal interrupted the call; nothing happened) and
/// turns any other `-1` into a ``SystemError`` carrying the call, errno
/// and path.
extension Syscall {
    static func writeAll(_ descriptor: Int32, _ buffer: UnsafeRawBufferPointer, path: String?) throws(SystemError) {
        var offset = 0
        while offset < buffer.count {
            let written = try run("write", path: path) {
                Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            }
            offset += written
        }
    }

    /// Reads up to `buffer.count` bytes; 0 means end of file.
    static func read(_ descriptor: Int32, _ buffer: UnsafeMutableRawBufferPointer, path: String?) throws(SystemError) -> Int {
        try run("read", path: path) { Glibc.read(descriptor, buffer.baseAddress, buffer.count) }
    }
}

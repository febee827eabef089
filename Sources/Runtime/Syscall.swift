#if canImport(Glibc)
import Glibc
#endif
import CContainer
import Posix
import Foundation

/// The one gate every system call in Runtime goes through: retries `EINTR`
/// and turns any other `-1` into a ``SystemError``.
extension Syscall {
    static func pipe() throws(SystemError) -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        try run("pipe2") { shoal_pipe_cloexec(&ends) }
        return (ends[0], ends[1])
    }

    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(SystemError) -> Int32 {
        try run("open", path: path) { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    /// Writes all of `bytes`.
    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], path: String? = nil) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw SystemError(call: "write", errno: errno, path: path)
            }
            offset += written
        }
    }

    /// Reads until end of file (through a buffer on the stack: the files
    /// read are small, cgroup and state files, where a zero-filled 64 KiB
    /// heap buffer per read cost more than the read).
    static func readAll(_ descriptor: Int32, path: String? = nil) throws(SystemError) -> [UInt8] {
        var result: [UInt8] = []
        let failure: Int32? = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { chunk in
            while true {
                let count = Glibc.read(descriptor, chunk.baseAddress, chunk.count)
                if count < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if count == 0 { return nil }
                result.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[0..<count]))
            }
        }
        if let failure { throw SystemError(call: "read", errno: failure, path: path) }
        return result
    }

    /// The whole content of a (small) file, e.g. a cgroup interface file.
    static func readFile(_ path: String) throws(SystemError) -> String {
        let descriptor = try open(path, O_RDONLY)
        defer { close(descriptor) }
        return String(decoding: try readAll(descriptor, path: path), as: UTF8.self)
    }

    /// Writes `text` to an existing file in one `write`, as cgroup interface
    /// files require (each write is one command).
    static func writeFile(_ path: String, _ text: String, create: Bool = false) throws(SystemError) {
        let descriptor = try open(path, O_WRONLY | (create ? O_CREAT | O_TRUNC : 0))
        defer { close(descriptor) }
        try writeAll(descriptor, Array(text.utf8), path: path)
    }

    /// Makes `bytes` the content of the file at `path` (created with `mode`
    /// if missing) by writing over the old content from the start, then
    /// cutting it to the new length: never truncated to empty first. On
    /// ext4, emptying a file that had data (O_TRUNC, truncate to 0) frees
    /// its blocks and makes the next close start writing the new data out
    /// at once (auto_da_alloc), and a later truncate then waits for that
    /// write: milliseconds per rewrite of a small file, where overwriting
    /// in place costs microseconds. Not atomic: readers that must never see
    /// a half-written file get a temporary written this way, then a rename.
    static func overwriteFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws(SystemError) {
        let descriptor = try open(path, O_WRONLY | O_CREAT, mode: mode)
        defer { close(descriptor) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                Glibc.pwrite(descriptor, buffer.baseAddress! + offset, buffer.count - offset, off_t(offset))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw SystemError(call: "pwrite", errno: errno, path: path)
            }
            offset += written
        }
        // Only when the old content was longer: ext4 walks the file's
        // extents at every truncate, even to the size it already has.
        var info = stat()
        try run("fstat", path: path) { fstat(descriptor, &info) }
        if info.st_size > off_t(bytes.count) {
            try run("ftruncate", path: path) { ftruncate(descriptor, off_t(bytes.count)) }
        }
    }

    /// `mkdir -p`; existing directories are fine.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        // The whole path first: it (or its parent) usually exists, and each
        // mkdir of an existing prefix walks the path again (a container start
        // makes ~10 directories 6-8 components deep, in cgroupfs among others).
        if mkdir(path, mode) == 0 || errno == EEXIST { return }
        guard errno == ENOENT else { throw SystemError(call: "mkdir", errno: errno, path: path) }
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty, parent != path, parent != "/" else { throw SystemError(call: "mkdir", errno: ENOENT, path: path) }
        try makeDirectories(parent, mode: mode)
        if mkdir(path, mode) == -1 && errno != EEXIST {
            throw SystemError(call: "mkdir", errno: errno, path: path)
        }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}

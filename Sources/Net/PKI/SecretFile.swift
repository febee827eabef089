import Posix
#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads and atomic owner-only writes for keys and certificates.
enum SecretFile {
    /// Owner read/write only: what a private key file must have.
    static let ownerOnlyMode: mode_t = 0o600

    /// Writes `bytes` to `path` via a temporary file with `mode` (set
    /// explicitly, so the umask cannot widen it), fsync, then rename.
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t = ownerOnlyMode) throws {
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = try Syscall.run("open", path: temporary) {
            open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        }
        do {
            try Syscall.run("fchmod", path: temporary) { fchmod(descriptor, mode) }
            var offset = 0
            while offset < bytes.count {
                let written = try bytes.withUnsafeBytes { raw in
                    try Syscall.run("write", path: temporary) {
                        Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                    }
                }
                offset += written
            }
            try Syscall.run("fsync", path: temporary) { fsync(descriptor) }
        } catch {
            Syscall.close(descriptor)
            unlink(temporary)
            throw error
        }
        Syscall.close(descriptor)
        do {
            try Syscall.run("rename", path: path) { rename(temporary, path) }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// Reads a whole (small) file.
    static func read(_ path: String) throws -> [UInt8] {
        let descriptor = try Syscall.run("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { Syscall.close(descriptor) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = try chunk.withUnsafeMutableBytes { raw in
                try Syscall.run("read", path: path) { Glibc.read(descriptor, raw.baseAddress, raw.count) }
            }
            if count == 0 { break }
            result += chunk[0..<count]
        }
        return result
    }
}

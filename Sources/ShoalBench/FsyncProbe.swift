import Foundation
import Glibc

/// Measures how many small write+fdatasync rounds per second the disk under
/// `directory` sustains: the ceiling on durable commits per batch.
///
/// The file is written and synced in full before timing, so every timed
/// round overwrites allocated blocks, as SQLite does once its write-ahead log
/// wraps: fdatasync then flushes data only, never the inode, which is the
/// fastest durable write this disk offers (the strictest bound).
enum FsyncProbe {
    static let fileBytes = 1 << 20

    static func fsyncsPerSecond(directory: String, seconds: Double) throws -> Double {
        let path = directory + "/shoal-bench-fsync-\(getpid())"
        let descriptor = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
        guard descriptor >= 0 else {
            throw BenchmarkError(description: "cannot create \(path): \(String(cString: strerror(errno))); pass --dir with a writable directory")
        }
        defer {
            close(descriptor)
            unlink(path)
        }
        let block = [UInt8](repeating: 0x5a, count: 4096)
        let whole = [UInt8](repeating: 0x5a, count: fileBytes)
        let prefilled = whole.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        guard prefilled == whole.count, fsync(descriptor) == 0 else {
            throw BenchmarkError(description: "write or fsync failed on \(path): \(String(cString: strerror(errno)))")
        }
        var rounds = 0
        let start = MonotonicClock.nanoseconds
        let deadline = start + UInt64(seconds * 1e9)
        var offset: off_t = 0
        while MonotonicClock.nanoseconds < deadline {
            let written = block.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, offset) }
            guard written == block.count, fdatasync(descriptor) == 0 else {
                throw BenchmarkError(description: "write or fdatasync failed on \(path): \(String(cString: strerror(errno)))")
            }
            offset = (offset + 4096) % off_t(fileBytes)
            rounds += 1
        }
        return Double(rounds) / (Double(MonotonicClock.nanoseconds - start) / 1e9)
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
}

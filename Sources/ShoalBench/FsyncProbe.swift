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

    /// The rate of one writer, as the bound defines it.
    static func fsyncsPerSecond(directory: String, seconds: Double) throws -> Double {
        try fsyncsPerSecond(directory: directory, seconds: seconds, writers: 1)
    }

    /// The rate of `writers` threads together, each syncing its own file at
    /// once, as co-located members do: what the disk gives them in all.
    static func fsyncsPerSecond(directory: String, seconds: Double, writers: Int) throws -> Double {
        let files = try (0..<writers).map { try ProbeFile(path: directory + "/shoal-bench-fsync-\(getpid())-\($0)") }
        // Removed here, not when the last writer thread lets go: the process may exit first.
        defer { for file in files { file.remove() } }
        let start = MonotonicClock.nanoseconds
        let deadline = start + UInt64(seconds * 1e9)
        let results = WriterResults(count: writers)
        // Threads of their own: Dispatch would run no more writers at once than there are cores.
        let finished = DispatchSemaphore(value: 0)
        for writer in 0..<writers {
            Thread {
                results.record(writer, Result { try files[writer].syncRounds(until: deadline) })
                finished.signal()
            }.start()
        }
        for _ in 0..<writers { finished.wait() }
        let rounds = try results.all().map { try $0.get() }
        return Double(rounds.reduce(0, +)) / (Double(MonotonicClock.nanoseconds - start) / 1e9)
    }

    /// Each writer's outcome, written once per slot by its own thread.
    private final class WriterResults: @unchecked Sendable {
        private let lock = NSLock()
        private var outcomes: [Result<Int, Error>?]

        init(count: Int) { outcomes = Array(repeating: nil, count: count) }

        func record(_ writer: Int, _ outcome: Result<Int, Error>) {
            lock.withLock { outcomes[writer] = outcome }
        }

        func all() -> [Result<Int, Error>] {
            lock.withLock { outcomes.map { $0 ?? .success(0) } }
        }
    }

    /// One probe file, written and synced in full when made, removed when dropped.
    private final class ProbeFile: @unchecked Sendable {
        let path: String
        let descriptor: Int32

        init(path: String) throws {
            self.path = path
            descriptor = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
            guard descriptor >= 0 else {
                throw BenchmarkError(description: "cannot create \(path): \(String(cString: strerror(errno))); pass --dir with a writable directory")
            }
            let whole = [UInt8](repeating: 0x5a, count: FsyncProbe.fileBytes)
            let prefilled = whole.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
            guard prefilled == whole.count, fsync(descriptor) == 0 else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                unlink(path)
                throw BenchmarkError(description: "write or fsync failed on \(path): \(reason)")
            }
        }

        private var removed = false

        deinit { remove() }

        /// Closes and deletes the file; called once its writer has finished.
        func remove() {
            guard !removed else { return }
            removed = true
            close(descriptor)
            unlink(path)
        }

        /// 4 KiB write + fdatasync rounds until `deadline`, cycling over the file.
        func syncRounds(until deadline: UInt64) throws -> Int {
            let block = [UInt8](repeating: 0x5a, count: 4096)
            var rounds = 0
            var offset: off_t = 0
            while MonotonicClock.nanoseconds < deadline {
                let written = block.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, offset) }
                guard written == block.count, fdatasync(descriptor) == 0 else {
                    throw BenchmarkError(description: "write or fdatasync failed on \(path): \(String(cString: strerror(errno)))")
                }
                offset = (offset + 4096) % off_t(FsyncProbe.fileBytes)
                rounds += 1
            }
            return rounds
        }
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
}

import Foundation
import Posix
#if canImport(Glibc)
import Glibc
#endif

/// Reads a container's JSON-lines log for `logs [--follow] [--tail N]`:
/// what is kept (rotated files, then the live one), then what is appended,
/// following the live file across rotations. Hands out complete lines only.
///
/// The live file is read through a descriptor opened first, so a container
/// removed while it is followed (`--rm`) still yields its last lines. One
/// stream uses it at a time. (`shoal container logs` in the daemon, and the
/// agent for `shoal service logs`.)
public final class ContainerLogFollower: @unchecked Sendable {
    static let readChunkBytes = 65536

    public let path: String
    public let maxFiles: Int
    private var descriptor: Int32 = -1
    private var inode: ino_t = 0
    private var partial: [UInt8] = []

    public init(path: String, maxFiles: Int) {
        self.path = path
        self.maxFiles = maxFiles
        openLive()
    }

    deinit {
        if descriptor >= 0 { Syscall.close(descriptor) }
    }

    private func openLive() {
        let opened = open(path, O_RDONLY | O_CLOEXEC)
        guard opened >= 0 else { return }
        var status = stat()
        fstat(opened, &status)
        descriptor = opened
        inode = status.st_ino
    }

    /// The lines kept so far, oldest first; at most the last `tail`.
    public func existing(tail: Int?) -> [ArraySlice<UInt8>] {
        var bytes: [UInt8] = []
        for index in stride(from: max(1, maxFiles) - 1, through: 1, by: -1) {
            bytes += FileManager.default.contents(atPath: path + ".\(index)").map(Array.init) ?? []
        }
        bytes += readAvailable()
        var lines = Self.completeLines(&bytes)
        partial = bytes
        if let tail { lines = Array(lines.suffix(tail)) }
        return lines
    }

    /// Complete lines appended since the last call (each with its newline).
    public func next() -> [ArraySlice<UInt8>] {
        var bytes = partial + readAvailable()
        if descriptor < 0 || rotated() {
            // Finish the old file, then continue with the new live one.
            if descriptor >= 0 { Syscall.close(descriptor) }
            descriptor = -1
            openLive()
            bytes += readAvailable()
        }
        let lines = Self.completeLines(&bytes)
        partial = bytes
        return lines
    }

    private func rotated() -> Bool {
        var status = stat()
        guard stat(path, &status) == 0 else { return false }  // removed: keep reading what is open
        return status.st_ino != inode
    }

    private func readAvailable() -> [UInt8] {
        guard descriptor >= 0 else { return [] }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: Self.readChunkBytes)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                result += buffer[0..<count]
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                return result
            }
        }
    }

    /// Splits off every complete line (newline included); leaves the rest in `bytes`.
    public static func completeLines(_ bytes: inout [UInt8]) -> [ArraySlice<UInt8>] {
        guard let last = bytes.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
        let complete = Array(bytes[...last])
        bytes.removeFirst(last + 1)
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        for (index, byte) in complete.enumerated() where byte == UInt8(ascii: "\n") {
            lines.append(complete[start...index])
            start = index + 1
        }
        return lines
    }
}

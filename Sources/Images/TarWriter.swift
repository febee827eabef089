import Posix
#if canImport(Glibc)
import Glibc
#endif

/// Writes a tar archive (POSIX ustar; a pax header for names over 100
/// bytes, GNU base-256 for sizes of 8 GiB and more) to a file descriptor
/// the caller owns, through a buffer. Members are owned by root, mode 0644
/// (directories 0755), timestamp 0, so the same content always makes the
/// same bytes.
///
/// Not thread-safe.
public final class TarWriter {
    public static let blockBytes = 512
    /// Bytes gathered before each `write(2)`.
    public static let bufferBytes = 1 << 20

    private let descriptor: Int32
    private let path: String
    private var buffer: [UInt8] = []
    /// Bytes written to the archive so far.
    public private(set) var writtenBytes: Int64 = 0

    public init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
        buffer.reserveCapacity(Self.bufferBytes)
    }

    /// Adds a directory member (`name` without a trailing slash).
    public func addDirectory(_ name: String) throws(SystemError) {
        try header(name + "/", type: UInt8(ascii: "5"), size: 0, mode: 0o755)
    }

    /// Adds a regular file holding `bytes`.
    public func addFile(_ name: String, bytes: [UInt8]) throws(SystemError) {
        try header(name, type: UInt8(ascii: "0"), size: Int64(bytes.count), mode: 0o644)
        try append(bytes)
        try pad(Int64(bytes.count))
    }

    /// Adds a regular file of `size` bytes read from `source`, which must
    /// deliver exactly that many (fewer is an error: the archive would be corrupt).
    public func addFile(_ name: String, size: Int64, from source: ByteSource) throws(ImageArchiveError) {
        do {
            try header(name, type: UInt8(ascii: "0"), size: size, mode: 0o644)
        } catch {
            throw .system(error)
        }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferBytes, alignment: 16)
        defer { chunk.deallocate() }
        var remaining = size
        while remaining > 0 {
            let count: Int
            do {
                count = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: chunk[..<Int(min(Int64(chunk.count), remaining))]))
            } catch {
                throw .unreadableBlob(member: name, error)
            }
            guard count > 0 else { throw .shortBlob(member: name, expectedBytes: size, actualBytes: size - remaining) }
            do {
                try append(UnsafeRawBufferPointer(rebasing: chunk[..<count]))
            } catch {
                throw .system(error)
            }
            remaining -= Int64(count)
        }
        do {
            try pad(size)
        } catch {
            throw .system(error)
        }
    }

    /// Writes the end-of-archive marker (two zero blocks) and flushes.
    public func finish() throws(SystemError) {
        buffer += [UInt8](repeating: 0, count: 2 * Self.blockBytes)
        writtenBytes += Int64(2 * Self.blockBytes)
        try flush()
    }

    // MARK: Encoding

    private func header(_ name: String, type: UInt8, size: Int64, mode: Int) throws(SystemError) {
        let nameBytes = Array(name.utf8)
        if nameBytes.count > 100 {
            // A pax `path` record carries the full name; the ustar field gets a truncated copy.
            var record = " path=\(name)\n"
            var length = record.utf8.count
            while String(length).utf8.count + record.utf8.count != length { length = String(length).utf8.count + record.utf8.count }
            record = "\(length)" + record
            try header("PaxHeaders/" + String(name.suffix(80)), type: UInt8(ascii: "x"), size: Int64(record.utf8.count), mode: 0o644)
            try append(Array(record.utf8))
            try pad(Int64(record.utf8.count))
        }
        var block = [UInt8](repeating: 0, count: Self.blockBytes)
        put(Array(nameBytes.prefix(100)), at: 0, into: &block)
        octal(Int64(mode), at: 100, width: 8, into: &block)
        octal(0, at: 108, width: 8, into: &block)
        octal(0, at: 116, width: 8, into: &block)
        if size < 0o77777777777 {
            octal(size, at: 124, width: 12, into: &block)
        } else {
            // GNU base-256: the top bit of the first byte marks it.
            var value = size
            for index in stride(from: 135, through: 125, by: -1) {
                block[index] = UInt8(value & 0xFF)
                value >>= 8
            }
            block[124] = 0x80
        }
        octal(0, at: 136, width: 12, into: &block)
        block[156] = type
        put(Array("ustar\0".utf8), at: 257, into: &block)
        put(Array("00".utf8), at: 263, into: &block)
        put(Array("root".utf8), at: 265, into: &block)
        put(Array("root".utf8), at: 297, into: &block)
        for index in 148..<156 { block[index] = UInt8(ascii: " ") }
        let sum = block.reduce(0) { $0 + Int64($1) }
        octal(sum, at: 148, width: 7, into: &block)
        try append(block)
    }

    private func put(_ bytes: [UInt8], at offset: Int, into block: inout [UInt8]) {
        for (index, byte) in bytes.enumerated() { block[offset + index] = byte }
    }

    /// `width - 1` octal digits, zero-padded, then NUL.
    private func octal(_ value: Int64, at offset: Int, width: Int, into block: inout [UInt8]) {
        var digits = Array(String(value, radix: 8).utf8)
        while digits.count < width - 1 { digits.insert(UInt8(ascii: "0"), at: 0) }
        put(digits, at: offset, into: &block)
        block[offset + width - 1] = 0
    }

    private func pad(_ size: Int64) throws(SystemError) {
        let remainder = Int(size % Int64(Self.blockBytes))
        if remainder > 0 { try append([UInt8](repeating: 0, count: Self.blockBytes - remainder)) }
    }

    // MARK: Output

    private func append(_ bytes: [UInt8]) throws(SystemError) {
        if buffer.count + bytes.count > Self.bufferBytes { try flush() }
        buffer.append(contentsOf: bytes)
        writtenBytes += Int64(bytes.count)
    }

    private func append(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        writtenBytes += Int64(bytes.count)
        if buffer.count + bytes.count > Self.bufferBytes {
            try flush()
            if bytes.count >= Self.bufferBytes {
                try Syscall.writeAll(descriptor, bytes, path: path)
                return
            }
        }
        buffer.append(contentsOf: bytes)
    }

    private func flush() throws(SystemError) {
        guard !buffer.isEmpty else { return }
        let failure: SystemError? = buffer.withUnsafeBytes { bytes in
            do throws(SystemError) {
                try Syscall.writeAll(descriptor, bytes, path: path)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
        buffer.removeAll(keepingCapacity: true)
    }
}

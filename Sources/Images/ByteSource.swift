import Posix
#if canImport(Glibc)
import Glibc
#endif

/// A stream of bytes read front to back: a layer file, a decompressor, a
/// network body. `read` fills up to `buffer.count` bytes and returns how many;
/// 0 means the end.
public protocol ByteSource: AnyObject {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(LayerExtractionError) -> Int
}

/// Reads a file descriptor the caller owns (and closes).
public final class FileByteSource: ByteSource {
    public let descriptor: Int32
    public let path: String?

    public init(descriptor: Int32, path: String? = nil) {
        self.descriptor = descriptor
        self.path = path
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(LayerExtractionError) -> Int {
        do {
            return try Syscall.read(descriptor, buffer, path: path)
        } catch {
            throw .system(error, entry: nil)
        }
    }
}

/// Serves bytes from memory (tests, small layers).
public final class MemoryByteSource: ByteSource {
    private let bytes: [UInt8]
    private var offset = 0

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(LayerExtractionError) -> Int {
        let count = min(buffer.count, bytes.count - offset)
        if count > 0 {
            bytes.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + offset, byteCount: count)
            }
            offset += count
        }
        return count
    }
}

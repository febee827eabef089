import Posix
#if canImport(Glibc)
import Glibc
#endif

/// How a layer blob is compressed.
public enum LayerCompression: Sendable, Equatable {
    case none
    case gzip

    /// From a layer media type; throws for zstd and unknown types.
    public init(mediaType: String) throws(LayerExtractionError) {
        if let gzip = MediaType.layers[mediaType] {
            self = gzip ? .gzip : .none
        } else if mediaType.hasSuffix("+zstd") {
            throw .compression("zstd layers (\(mediaType)) are not supported yet: push the image with gzip compression")
        } else {
            throw .compression("unknown layer media type \"\(mediaType.prefix(200))\"")
        }
    }

    /// From the first bytes of the blob (gzip magic 1f 8b; zstd 28 b5 2f fd refused).
    public static func detect(_ prefix: [UInt8]) throws(LayerExtractionError) -> LayerCompression {
        if prefix.count >= 2 && prefix[0] == 0x1F && prefix[1] == 0x8B { return .gzip }
        if prefix.count >= 4 && prefix[0] == 0x28 && prefix[1] == 0xB5 && prefix[2] == 0x2F && prefix[3] == 0xFD {
            throw .compression("zstd-compressed layers are not supported yet: use an uncompressed or gzip layer")
        }
        return .none
    }

    /// Reads the first bytes of the file at `descriptor` (without moving its offset) and detects.
    public static func detect(descriptor: Int32, path: String?) throws(LayerExtractionError) -> LayerCompression {
        var prefix = [UInt8](repeating: 0, count: 4)
        let count: Int
        do {
            count = try prefix.withUnsafeMutableBytes { buffer in
                try Syscall.run("pread", path: path) { pread(descriptor, buffer.baseAddress, 4, 0) }
            }
        } catch let error as SystemError {
            throw .system(error, entry: nil)
        } catch {
            preconditionFailure("\(error)")
        }
        return try detect(Array(prefix[..<count]))
    }
}

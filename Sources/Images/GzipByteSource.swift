import CZlib

/// Inflates a gzip stream (RFC 1952) from another source, streaming, with
/// zlib's `windowBits` 15+32 (automatic gzip/zlib header detection).
/// Concatenated gzip members (as `pigz` and some registries write) are read
/// one after another; bytes after the last member that are not another gzip
/// header are ignored, as GNU gzip does. A stream that ends before its
/// trailer is an error: a truncated layer must never extract as if whole.
public final class GzipByteSource: ByteSource {
    /// Compressed bytes read from `source` at a time.
    public static let inputChunkBytes = 256 << 10

    private let source: ByteSource
    private var stream = z_stream()
    private let input: UnsafeMutableRawBufferPointer
    private var sourceEnded = false
    private var streamEnded = false
    private var initialised = false

    public init(_ source: ByteSource) throws(LayerExtractionError) {
        self.source = source
        input = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.inputChunkBytes, alignment: 16)
        let status = shoal_inflateInit2(&stream, 15 + 32)
        guard status == Z_OK else {
            input.deallocate()
            throw .compression("inflateInit2 failed with zlib status \(status)")
        }
        initialised = true
    }

    deinit {
        if initialised { inflateEnd(&stream) }
        input.deallocate()
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(LayerExtractionError) -> Int {
        guard buffer.count > 0 else { return 0 }
        while !streamEnded {
            if stream.avail_in == 0 && !sourceEnded {
                let count = try source.read(into: input)
                if count == 0 {
                    sourceEnded = true
                } else {
                    stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_in = uInt(count)
                }
            }
            stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(min(buffer.count, Int(UInt32.max)))
            let status = inflate(&stream, Z_NO_FLUSH)
            let produced = buffer.count - Int(stream.avail_out)
            switch status {
            case Z_STREAM_END:
                try startNextMemberIfAny()
                if produced > 0 { return produced }
            case Z_OK:
                if produced > 0 { return produced }
            case Z_BUF_ERROR:
                // No progress possible: more input is needed.
                if sourceEnded && stream.avail_in == 0 {
                    throw .truncated(entry: nil, reason: "the gzip stream ends before its end marker (truncated download?)")
                }
                if produced > 0 { return produced }
            case Z_DATA_ERROR:
                let message = stream.msg.map { String(cString: $0) } ?? "invalid data"
                throw .compression("corrupt gzip data: \(message)")
            case Z_MEM_ERROR:
                throw .compression("zlib ran out of memory")
            default:
                throw .compression("inflate failed with zlib status \(status)")
            }
        }
        return 0
    }

    /// After a member's trailer: continue if another gzip member follows.
    private func startNextMemberIfAny() throws(LayerExtractionError) {
        if stream.avail_in == 0 && !sourceEnded {
            let count = try source.read(into: input)
            if count == 0 {
                sourceEnded = true
            } else {
                stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_in = uInt(count)
            }
        }
        if stream.avail_in >= 2, stream.next_in[0] == 0x1F, stream.next_in[1] == 0x8B {
            inflateReset(&stream)
        } else {
            streamEnded = true
        }
    }
}

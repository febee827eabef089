import CZlib

/// Compresses an uncompressed layer tar into a gzip blob of the content
/// store (`commit`): the tar bytes go through zlib's deflate (gzip header,
/// `windowBits` 15+16) into a ``BlobWriter``, which hashes the compressed
/// bytes (the layer digest), while the uncompressed bytes are hashed here
/// for the diff ID the image config lists.
///
/// Not thread-safe: one producer feeds it. The caller commits or aborts the
/// blob writer after ``finish()``.
public final class GzipLayerWriter {
    /// Compressed bytes handed to the blob writer at a time.
    static let outputChunkBytes = 256 << 10
    /// zlib's default (6), as `gzip` and Docker's layer compression use.
    public static let defaultLevel: Int32 = -1

    private let blob: BlobWriter
    private let diffHasher = SHA256Hasher()
    private var stream = z_stream()
    private let output: UnsafeMutableRawBufferPointer
    private var finished = false

    public init(blob: BlobWriter, level: Int32 = GzipLayerWriter.defaultLevel) throws(ContentStoreError) {
        self.blob = blob
        output = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.outputChunkBytes, alignment: 16)
        let status = shoal_deflateInit2(&stream, level, 15 + 16)
        guard status == Z_OK else {
            output.deallocate()
            // Only a bad level or no memory make deflateInit2 fail.
            preconditionFailure("deflateInit2(level \(level)) failed with zlib status \(status)")
        }
    }

    deinit {
        deflateEnd(&stream)
        output.deallocate()
    }

    /// Uncompressed tar bytes hashed so far.
    public var uncompressedBytes: Int64 { diffHasher.byteCount }

    /// Compresses `bytes` (uncompressed tar) into the blob.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(ContentStoreError) {
        precondition(!finished, "GzipLayerWriter.write after finish")
        guard bytes.count > 0 else { return }
        diffHasher.update(bytes)
        try deflateAll(bytes, flush: Z_NO_FLUSH)
    }

    /// Ends the gzip stream (trailer included) and returns the diff ID: the
    /// sha256 of the uncompressed tar.
    public func finish() throws(ContentStoreError) -> Digest {
        precondition(!finished, "GzipLayerWriter.finish called twice")
        finished = true
        try deflateAll(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FINISH)
        return diffHasher.finish()
    }

    /// Feeds `bytes` to deflate and writes whatever it produces; with
    /// `Z_FINISH`, until the end of the stream is out.
    private func deflateAll(_ bytes: UnsafeRawBufferPointer, flush: Int32) throws(ContentStoreError) {
        stream.next_in = UnsafeMutablePointer(mutating: bytes.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(bytes.count)
        while true {
            stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(output.count)
            let status = deflate(&stream, flush)
            precondition(status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR, "deflate failed with zlib status \(status)")
            let produced = output.count - Int(stream.avail_out)
            if produced > 0 { try blob.write(UnsafeRawBufferPointer(rebasing: output[..<produced])) }
            if flush == Z_FINISH {
                if status == Z_STREAM_END { return }
            } else if stream.avail_in == 0 && stream.avail_out > 0 {
                return
            }
        }
    }
}

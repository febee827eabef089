/// Reassembles frames (4-byte big-endian payload length, then the payload)
/// from bytes as they arrive from a stream, in chunks of any size: a frame
/// split over many chunks, many frames in one chunk, or both.
///
/// Memory: the decoder holds at most one incomplete frame, and grows it only
/// as its bytes arrive (reserving at most `WireLimits.frameReserveAheadBytes`
/// ahead), so a peer cannot make it allocate 16 MiB by sending a 4-byte
/// header. A header declaring more than `maxFrameBytes` is rejected as soon as
/// its fourth byte arrives, before any of the body is buffered.
///
/// After an error the decoder is failed for good (every later `feed` throws
/// `streamFailed`): the stream's framing is lost, so the caller must close the
/// connection.
public struct FrameDecoder: Sendable {
    /// The largest payload accepted, in bytes.
    public let maxFrameBytes: Int

    private var headerValue: UInt32 = 0
    private var headerByteCount = 0
    /// The payload length of the frame being filled; nil while reading a header.
    private var bodyLength: Int?
    private var body: [UInt8] = []
    /// Stream bytes consumed so far, to report where a bad header starts.
    private var streamOffset = 0
    private var failure: WireError?

    public init(maxFrameBytes: Int = WireLimits.defaultMaxFrameBytes) {
        precondition(maxFrameBytes >= 0 && UInt64(maxFrameBytes) <= UInt64(UInt32.max),
                     "maxFrameBytes must be in 0...\(UInt32.max) (a 4-byte length), got \(maxFrameBytes)")
        self.maxFrameBytes = maxFrameBytes
    }

    /// Bytes received but not yet returned as a frame (a partial header or body).
    public var bufferedByteCount: Int { headerByteCount + body.count }
    /// Whether the stream ended cleanly if it ends now (no partial frame).
    public var isAtFrameBoundary: Bool { headerByteCount == 0 && bodyLength == nil }
    /// Whether an earlier `feed` failed; the stream is then unusable.
    public var hasFailed: Bool { failure != nil }

    /// Consumes `chunk` and returns the frames it completes, in order.
    /// If the chunk holds a bad header, frames before it in the same chunk
    /// are lost with the error; use `feed(_:onFrame:)` to receive them first.
    public mutating func feed(_ chunk: ArraySlice<UInt8>) throws(WireError) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        try feed(chunk) { frames.append($0) }
        return frames
    }

    public mutating func feed(_ chunk: [UInt8]) throws(WireError) -> [[UInt8]] {
        try feed(chunk[...])
    }

    /// Consumes `chunk`, calling `onFrame` with each completed frame's
    /// payload, in order, before any error in a later header is thrown.
    public mutating func feed(_ chunk: ArraySlice<UInt8>, onFrame: (_ payload: [UInt8]) -> Void) throws(WireError) {
        if let failure { throw WireError.streamFailed(firstError: failure.description) }
        var index = chunk.startIndex
        while index < chunk.endIndex {
            if let length = bodyLength {
                let available = chunk.endIndex - index
                let needed = length - body.count
                if body.isEmpty && available >= needed {
                    // The whole body is in this chunk: one copy, straight out.
                    onFrame(Array(chunk[index..<index + needed]))
                    index += needed
                    streamOffset += needed
                    bodyLength = nil
                    continue
                }
                let take = min(needed, available)
                if body.count + take > body.capacity {
                    body.reserveCapacity(min(length, max(body.count + take, body.capacity * 2, WireLimits.frameReserveAheadBytes)))
                }
                body.append(contentsOf: chunk[index..<index + take])
                index += take
                streamOffset += take
                if body.count == length {
                    let frame = body
                    body = []
                    bodyLength = nil
                    onFrame(frame)
                }
            } else {
                headerValue = (headerValue << 8) | UInt32(chunk[index])
                headerByteCount += 1
                index += 1
                streamOffset += 1
                guard headerByteCount == WireLimits.frameHeaderBytes else { continue }
                let declared = headerValue
                headerValue = 0
                headerByteCount = 0
                guard UInt64(declared) <= UInt64(maxFrameBytes) else {
                    let error = WireError.frameTooLarge(
                        offset: streamOffset - WireLimits.frameHeaderBytes,
                        declaredBytes: UInt64(declared), maxFrameBytes: maxFrameBytes)
                    failure = error
                    throw error
                }
                if declared == 0 {
                    onFrame([])
                } else {
                    bodyLength = Int(declared)
                }
            }
        }
    }
}

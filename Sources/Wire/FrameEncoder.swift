/// Turns payloads into frames: a 4-byte big-endian payload length, then the
/// payload. The sending side of `FrameDecoder`.
public struct FrameEncoder: Sendable {
    /// The largest payload this encoder frames; must not exceed what the
    /// receiving `FrameDecoder` accepts.
    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int = WireLimits.defaultMaxFrameBytes) {
        precondition(maxFrameBytes >= 0 && UInt64(maxFrameBytes) <= UInt64(UInt32.max),
                     "maxFrameBytes must be in 0...\(UInt32.max) (a 4-byte length), got \(maxFrameBytes)")
        self.maxFrameBytes = maxFrameBytes
    }

    /// Appends one frame holding `payload` to `buffer`. Throws
    /// `frameTooLarge` (and appends nothing) for a payload over the limit:
    /// the caller must split it (Raft: fewer entries per append) instead.
    public func append<C: Collection>(_ payload: C, to buffer: inout [UInt8]) throws(WireError) where C.Element == UInt8 {
        let count = payload.count
        guard count <= maxFrameBytes else {
            throw WireError.frameTooLarge(offset: buffer.count, declaredBytes: UInt64(count), maxFrameBytes: maxFrameBytes)
        }
        let length = UInt32(count)
        buffer.reserveCapacity(buffer.count + WireLimits.frameHeaderBytes + count)
        buffer.append(UInt8(truncatingIfNeeded: length >> 24))
        buffer.append(UInt8(truncatingIfNeeded: length >> 16))
        buffer.append(UInt8(truncatingIfNeeded: length >> 8))
        buffer.append(UInt8(truncatingIfNeeded: length))
        buffer.append(contentsOf: payload)
    }

    /// One frame holding `payload`.
    public func encode<C: Collection>(_ payload: C) throws(WireError) -> [UInt8] where C.Element == UInt8 {
        var buffer: [UInt8] = []
        try append(payload, to: &buffer)
        return buffer
    }

    /// One frame holding `message` as a top-level Wire message.
    public func encode<T: WireCodable>(message: T) throws(WireError) -> [UInt8] {
        try encode(message.wireEncoded())
    }
}

/// The limits every Wire decoder enforces, each with its unit in the name.
///
/// They exist so that a hostile or corrupt peer can never make a node
/// allocate more than it has been sent, nor more than one frame's worth.
public enum WireLimits {
    /// The largest frame payload a `FrameDecoder` accepts and a
    /// `FrameEncoder` produces unless configured otherwise: 16 MiB. Raft
    /// batches entries well below this (see the Raft options' message size
    /// limits), and a snapshot larger than it must be chunked by its sender.
    public static let defaultMaxFrameBytes = 16 * 1024 * 1024

    /// The number of bytes in a frame header: a big-endian `UInt32` length.
    public static let frameHeaderBytes = 4

    /// The longest LEB128 encoding of a `UInt64`: ceil(64 / 7) bytes.
    public static let maxVarintBytes = 10

    /// The largest buffer a `FrameDecoder` reserves ahead of the bytes that
    /// have actually arrived, so that a 4-byte header promising 16 MiB costs
    /// at most this much until the body really comes.
    public static let frameReserveAheadBytes = 64 * 1024
}

/// FNV-1a over 64-bit words: a stable digest of everything a run did, so
/// two runs of one seed can be compared without keeping their traces.
/// (Swift's `Hasher` is seeded per process and cannot be used for this.)
public struct TraceHasher: Sendable, Equatable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    @inline(__always)
    public mutating func combine(_ word: UInt64) {
        var rest = word
        for _ in 0..<8 {
            value ^= rest & 0xff
            value &*= 0x0000_0100_0000_01b3
            rest >>= 8
        }
    }

    public mutating func combine(_ bytes: [UInt8]) {
        combine(UInt64(bytes.count))
        // Through a buffer pointer: the invariants digest whole logs after
        // every event, and Array's generic iterator dominates debug builds.
        var digest = value
        bytes.withUnsafeBufferPointer { buffer in
            for position in 0..<buffer.count {
                digest ^= UInt64(buffer[position])
                digest &*= 0x0000_0100_0000_01b3
            }
        }
        value = digest
    }

    /// The digest of `bytes` alone.
    public static func digest(_ bytes: [UInt8]) -> UInt64 {
        var hasher = TraceHasher()
        hasher.combine(bytes)
        return hasher.value
    }
}

import COpenSSL

/// Random bytes from OpenSSL's CSPRNG, for secrets, serial numbers and jitter.
public struct SecureRandom: RandomNumberGenerator, Sendable {
    public init() {}

    /// `count` unpredictable bytes.
    public static func bytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let result = bytes.withUnsafeMutableBytes { RAND_bytes($0.baseAddress, Int32($0.count)) }
        // RAND_bytes fails only when the OS entropy source is unavailable: no
        // secret may be produced then, and there is nothing to recover.
        precondition(result == 1, "RAND_bytes failed: \(OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))")
        return bytes
    }

    public mutating func next() -> UInt64 {
        Self.bytes(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }
}

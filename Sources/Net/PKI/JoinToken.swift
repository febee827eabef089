import COpenSSL

/// A join token: `SHOAL-1-<sha256 of the root CA certificate>-<secret>`.
///
/// The digest lets a joining node pin the cluster's CA before it trusts or
/// sends anything; the secret (160 bits from OpenSSL's RNG, lowercase base32)
/// is then proven over the pinned connection. Managers keep one token per
/// role and rotate them.
public struct JoinToken: Hashable, Sendable, CustomStringConvertible {
    public static let prefix = "SHOAL"
    public static let version = 1
    /// Random bytes in a secret: 160 bits.
    public static let secretBytes = 20
    /// Characters of an encoded secret: 160 bits / 5 bits per base32 character.
    public static let secretLength = 32
    static let base32Alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    /// Hex SHA-256 of the root CA certificate (DER).
    public let rootDigest: String
    public let secret: String

    /// A fresh token for the cluster whose root is `root`.
    public static func generate(root: Certificate) -> JoinToken {
        JoinToken(verifiedDigest: root.sha256Digest, secret: base32(SecureRandom.bytes(secretBytes)))
    }

    /// Builds a token from its parts, validating both.
    public init(rootDigest: String, secret: String) throws(JoinTokenError) {
        guard rootDigest.utf8.count == 64, rootDigest.utf8.allSatisfy(Self.isLowercaseHex) else {
            throw .invalidDigest(rootDigest)
        }
        guard secret.utf8.count == Self.secretLength, secret.utf8.allSatisfy({ Self.base32Alphabet.contains($0) }) else {
            throw .invalidSecret(length: secret.utf8.count)
        }
        self.init(verifiedDigest: rootDigest, secret: secret)
    }

    private init(verifiedDigest: String, secret: String) {
        self.rootDigest = verifiedDigest
        self.secret = secret
    }

    /// Parses `SHOAL-1-<digest>-<secret>`.
    public init(parsing text: String) throws(JoinTokenError) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4 else { throw .malformed(reason: "expected 4 parts separated by '-', found \(parts.count)") }
        guard parts[0] == Self.prefix else { throw .malformed(reason: "must start with \(Self.prefix)-") }
        guard parts[1] == String(Self.version) else { throw .unsupportedVersion(parts[1]) }
        try self.init(rootDigest: parts[2], secret: parts[3])
    }

    public var description: String { "\(Self.prefix)-\(Self.version)-\(rootDigest)-\(secret)" }

    /// Whether `root` is the CA this token pins.
    public func pins(_ root: Certificate) -> Bool {
        Self.constantTimeEqual(rootDigest, root.sha256Digest)
    }

    /// Whether `other` carries the same secret, compared in constant time so
    /// that response timing reveals nothing about how much of a guess matched.
    public func hasSameSecret(as other: JoinToken) -> Bool {
        Self.constantTimeEqual(secret, other.secret) && Self.constantTimeEqual(rootDigest, other.rootDigest)
    }

    private static func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8), right = Array(rhs.utf8)
        guard left.count == right.count else { return false }
        return left.withUnsafeBytes { l in right.withUnsafeBytes { r in CRYPTO_memcmp(l.baseAddress, r.baseAddress, l.count) == 0 } }
    }

    private static func isLowercaseHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    /// RFC 4648 base32, lowercase, without padding.
    static func base32(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                output.append(base32Alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { output.append(base32Alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: output, as: UTF8.self)
    }
}

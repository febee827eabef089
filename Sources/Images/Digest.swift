/// A content digest in the OCI form `sha256:<64 lowercase hex>`.
///
/// Parsing is strict: only sha256, exactly 64 lowercase hex characters. A
/// digest names a blob file, so anything looser would let a crafted digest
/// reach the file system.
public struct Digest: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    /// The 64 lowercase hex characters after `sha256:`.
    public let hex: String

    /// The only algorithm Shoal stores.
    public static let algorithm = "sha256"
    static let hexLength = 64

    /// Parses `sha256:<64 lowercase hex>`; throws ``DigestError`` otherwise.
    public init(parsing text: String) throws(DigestError) {
        guard let colon = text.firstIndex(of: ":") else {
            throw DigestError(text: text, reason: "missing the algorithm prefix (expected sha256:<64 hex>)")
        }
        let algorithm = text[..<colon]
        let encoded = text[text.index(after: colon)...]
        guard algorithm == Self.algorithm else {
            throw DigestError(text: text, reason: "unsupported algorithm \"\(algorithm)\" (only sha256 is accepted)")
        }
        guard encoded.utf8.count == Self.hexLength else {
            throw DigestError(text: text, reason: "sha256 digests have 64 hex characters, this one has \(encoded.utf8.count)")
        }
        for byte in encoded.utf8 where !((byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66)) {
            let reason = (byte >= 0x41 && byte <= 0x46)
                ? "uppercase hex is not canonical: write the digest in lowercase"
                : "character \"\(Character(Unicode.Scalar(byte)))\" is not lowercase hex"
            throw DigestError(text: text, reason: reason)
        }
        hex = String(encoded)
    }

    /// A digest from 32 raw SHA-256 bytes.
    public init(sha256 bytes: [UInt8]) {
        precondition(bytes.count == 32, "SHA-256 output is 32 bytes, got \(bytes.count)")
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(64)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        hex = String(decoding: text, as: UTF8.self)
    }

    /// The SHA-256 digest of `bytes`.
    public static func of(_ bytes: some Collection<UInt8>) -> Digest {
        let hasher = SHA256Hasher()
        Array(bytes).withUnsafeBytes { hasher.update($0) }
        return hasher.finish()
    }

    public var description: String { "sha256:\(hex)" }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.hex < rhs.hex }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try Digest(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

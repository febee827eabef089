/// The id of a cluster object. Ids are chosen by whoever proposes the
/// command (from its own random source) so that `apply` stays deterministic.
public struct ObjectID: Hashable, Comparable, Codable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String

    /// Accepts 1 to 64 characters from `[a-z0-9-]`, starting with a letter or digit.
    public init?(_ rawValue: String) {
        guard Self.isValid(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    public init(stringLiteral value: String) {
        precondition(Self.isValid(value), "invalid object id literal '\(value)'")
        rawValue = value
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard Self.isValid(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "invalid object id '\(text)'"))
        }
        rawValue = text
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...64).contains(bytes.count), bytes[0] != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-") }
    }

    /// A fresh id of 25 base-36 characters from `generator` (as Swarm's ids).
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> ObjectID {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        var bytes: [UInt8] = []
        for _ in 0..<25 { bytes.append(alphabet[Int(generator.next() % 36)]) }
        return ObjectID(String(decoding: bytes, as: UTF8.self))!
    }

    public static func < (lhs: ObjectID, rhs: ObjectID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { rawValue }
}

/// An IPv4 network in CIDR form ("10.88.0.0/16"): the bridge's subnet, the
/// destination of a host route. Addresses are host-order `UInt32`.
public struct IPv4Subnet: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The network address (host bits zero).
    public let network: UInt32
    public let prefixLength: Int

    /// Parses "A.B.C.D/N" (host bits must be zero); nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Subnet.parseAddress(String(parts[0])),
              let length = Int(parts[1]), (0...32).contains(length)
        else { return nil }
        let subnet = IPv4Subnet(network: address, prefixLength: length)
        guard subnet.network == address else { return nil }
        self = subnet
    }

    /// The subnet of `prefixLength` bits that holds `address`.
    public init(network address: UInt32, prefixLength: Int) {
        precondition((0...32).contains(prefixLength), "prefix length \(prefixLength) outside 0...32")
        self.prefixLength = prefixLength
        self.network = address & IPv4Subnet.mask(prefixLength)
    }

    public var mask: UInt32 { IPv4Subnet.mask(prefixLength) }
    public var broadcast: UInt32 { network | ~mask }

    public func contains(_ address: UInt32) -> Bool { address & mask == network }

    /// Whether the two share any address (one contains the other).
    public func overlaps(_ other: IPv4Subnet) -> Bool {
        let shorter = min(prefixLength, other.prefixLength)
        let mask = IPv4Subnet.mask(shorter)
        return network & mask == other.network & mask
    }

    public var description: String { "\(IPv4Subnet.format(network))/\(prefixLength)" }

    static func mask(_ length: Int) -> UInt32 {
        length == 0 ? 0 : UInt32.max << UInt32(32 - length)
    }

    /// "A.B.C.D" to a host-order address; nil when malformed.
    public static func parseAddress(_ text: String) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard !octet.isEmpty, octet.count <= 3, octet.allSatisfy(\.isASCII),
                  let byte = UInt8(octet) else { return nil }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    public static func format(_ address: UInt32) -> String {
        "\(address >> 24).\(address >> 16 & 0xff).\(address >> 8 & 0xff).\(address & 0xff)"
    }
}

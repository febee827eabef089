/// The node bridge of a runtime: ``NetworkMode/bridge`` containers get a
/// veth port on it and an address in `subnet`. Created on first use (like
/// docker0) and left in place when containers go.
public struct BridgeConfiguration: Codable, Equatable, Sendable {
    /// The bridge's interface name (at most 15 bytes).
    public var name: String
    /// The containers' subnet; its first address (`.1`) is the bridge's own
    /// (the gateway), the rest are leased to containers. Refused when it
    /// overlaps a route of the host that is not the bridge's own.
    public var subnet: IPv4Subnet

    /// `shoal0` on 10.88.0.0/16: a private range home and cloud networks
    /// rarely use (Docker's default 172.17.0.0/16 collides more often).
    public static let defaultName = "shoal0"
    public static let defaultSubnet = IPv4Subnet("10.88.0.0/16")!

    public init(name: String = BridgeConfiguration.defaultName, subnet: IPv4Subnet = BridgeConfiguration.defaultSubnet) {
        self.name = name
        self.subnet = subnet
    }

    /// Why this configuration cannot work, or nil: the name must be an
    /// interface name (1-15 bytes of [A-Za-z0-9_.-], not "." or ".."), the
    /// subnet must leave room for the gateway and a container (/30 or wider).
    public var problem: String? {
        guard !name.isEmpty, name.utf8.count <= 15, name != ".", name != "..",
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
        else { return "\"\(name)\" is not an interface name: use 1-15 of [A-Za-z0-9_.-]" }
        guard subnet.prefixLength <= 30 else {
            return "subnet \(subnet) has no room for the gateway and a container: use a /30 or wider"
        }
        return nil
    }

    /// The bridge's address.
    public var gateway: UInt32 { subnet.network + 1 }

    /// Addresses a container may lease: after the gateway, before broadcast.
    var leasableAddresses: ClosedRange<UInt32>? {
        guard subnet.prefixLength <= 30 else { return nil }
        return (subnet.network + 2)...(subnet.broadcast - 1)
    }
}

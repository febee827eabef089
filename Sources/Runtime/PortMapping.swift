/// `-p [HOST_ADDRESS:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`: the runtime
/// listens on the host address and port and proxies each TCP connection, or
/// each UDP client's datagrams, to the container's address and port (a
/// userland proxy in the runtime's process, as docker-proxy; no NAT). Only
/// for ``NetworkMode/bridge``.
///
/// `-P` is the caller's to expand: one mapping with `hostPort` 0 per port
/// the image EXPOSEs.
public struct PortMapping: Codable, Equatable, Hashable, Sendable {
    /// The IPv4 address the listener binds; "0.0.0.0" is every interface
    /// (Docker's default), "127.0.0.1" only this machine.
    public var hostAddress: String
    /// 0: a free port the kernel picks (recorded in ``PublishedPort``).
    public var hostPort: UInt16
    public var containerPort: UInt16
    public var transport: PortTransport

    /// Every interface: Docker's default publish address.
    public static let everyInterface = "0.0.0.0"

    public init(hostAddress: String = PortMapping.everyInterface, hostPort: UInt16, containerPort: UInt16, transport: PortTransport = .tcp) {
        self.hostAddress = hostAddress
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.transport = transport
    }
}

/// The transport of a published port: ``PortProxy`` relays TCP,
/// ``UDPPortProxy`` UDP.
public enum PortTransport: String, Codable, Sendable {
    case tcp
    case udp
}

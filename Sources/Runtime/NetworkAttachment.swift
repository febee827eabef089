/// What a ``NetworkMode/bridge`` container got: recorded in its
/// ``ContainerState/network`` at create (address) and start (ports, veth).
public struct NetworkAttachment: Codable, Equatable, Sendable {
    /// The bridge the container's veth is a port of.
    public var bridge: String
    /// The container's address on `eth0` ("10.88.0.2"), leased until delete.
    public var address: String
    public var prefixLength: Int
    /// The bridge's address: how the container reaches the host.
    public var gateway: String
    /// The host end of the veth pair ("shv…"), present while running.
    public var hostInterface: String?
    /// The published ports with the host ports actually bound (a mapping
    /// with host port 0 shows the one picked), present while running.
    public var ports: [PublishedPort]

    public init(bridge: String, address: String, prefixLength: Int, gateway: String, hostInterface: String? = nil, ports: [PublishedPort] = []) {
        self.bridge = bridge
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
        self.hostInterface = hostInterface
        self.ports = ports
    }
}

/// One published port as bound (`shoal container port`).
public struct PublishedPort: Codable, Equatable, Sendable {
    public var hostAddress: String
    public var hostPort: UInt16
    public var containerPort: UInt16
    public var transport: PortTransport

    public init(hostAddress: String, hostPort: UInt16, containerPort: UInt16, transport: PortTransport = .tcp) {
        self.hostAddress = hostAddress
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.transport = transport
    }
}

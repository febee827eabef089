/// A published port's relay on the host, TCP (``PortProxy``) or UDP
/// (``UDPPortProxy``): bound when made (a port in use fails the start
/// before anything runs), relaying from ``start()`` until ``close()``.
protocol PublishedPortProxy: AnyObject, Sendable {
    /// The mapping as bound (the kernel's port when 0 was asked for).
    var published: PublishedPort { get }
    func start()
    func close()
}

extension ContainerRuntime {
    /// The relay of `mapping`'s transport to `containerAddress`.
    static func makePortProxy(_ mapping: PublishedPort, containerAddress: String) throws -> any PublishedPortProxy {
        switch mapping.transport {
        case .tcp: return try PortProxy(mapping: mapping, containerAddress: containerAddress)
        case .udp: return try UDPPortProxy(mapping: mapping, containerAddress: containerAddress)
        }
    }
}

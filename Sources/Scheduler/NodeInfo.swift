import ClusterState

/// A host port a task publishes in `mode=host`: `8080/tcp`.
/// In the template's order, so reasons name ports in spec order.
struct HostPort: Hashable, Comparable, CustomStringConvertible {
    var port: Int
    var transportProtocol: TemplateProtocol

    typealias TemplateProtocol = TaskTemplate.PublishedPort.TransportProtocol

    static func < (lhs: HostPort, rhs: HostPort) -> Bool { (lhs.port, lhs.transportProtocol.rawValue) < (rhs.port, rhs.transportProtocol.rawValue) }
    var description: String { "\(port)/\(transportProtocol.rawValue)" }

    static func of(_ template: TaskTemplate) -> [HostPort] {
        template.ports.filter { $0.mode == .host }.map { HostPort(port: $0.publishedPort, transportProtocol: $0.transportProtocol) }
    }
}

/// What the scheduler knows about one node while it places a batch: the
/// node, and what its non-terminal tasks (those already there and those
/// assigned earlier in this batch) hold.
struct NodeInfo {
    let node: Node
    var reservedNanoCPUs: Int64 = 0
    var reservedMemoryBytes: Int64 = 0
    var taskCount = 0
    var tasksPerService: [ObjectID: Int] = [:]
    var hostPorts: Set<HostPort> = []

    init(node: Node) {
        self.node = node
    }

    mutating func add(serviceID: ObjectID, template: TaskTemplate, hostPorts ports: [HostPort]) {
        reservedNanoCPUs += template.resources.reservedNanoCPUs
        reservedMemoryBytes += template.resources.reservedMemoryBytes
        taskCount += 1
        tasksPerService[serviceID, default: 0] += 1
        for port in ports { hostPorts.insert(port) }
    }

    func tasks(of serviceID: ObjectID) -> Int { tasksPerService[serviceID] ?? 0 }
}

import ClusterState

/// A host port a task publishes in `mode=host`: `8080/tcp`.
/// In the template's order, so reasons name ports in spec order.
struct HostPort: Hashable, Comparable, CustomStringConvertible, Sendable {
    var port: Int
    var transportProtocol: TemplateProtocol

    typealias TemplateProtocol = TaskTemplate.PublishedPort.TransportProtocol

    static func < (lhs: HostPort, rhs: HostPort) -> Bool { (lhs.port, lhs.transportProtocol.rawValue) < (rhs.port, rhs.transportProtocol.rawValue) }
    var description: String { "\(port)/\(transportProtocol.rawValue)" }

    static func of(_ template: TaskTemplate) -> [HostPort] {
        // Most tasks publish nothing: no array to build per task.
        if template.ports.isEmpty { return [] }
        // Published 0 takes whatever port is free on the node: nothing to conflict with.
        return template.ports.filter { $0.mode == .host && $0.publishedPort != 0 }.map { HostPort(port: $0.publishedPort, transportProtocol: $0.transportProtocol) }
    }
}

/// What the scheduler knows about one node while it places a batch: the
/// node, and what its non-terminal tasks (those already there and those
/// assigned earlier in this batch) hold.
struct NodeInfo {
    let node: Node
    var load: NodeLoad

    init(node: Node, load: NodeLoad = NodeLoad()) {
        self.node = node
        self.load = load
    }

    var reservedNanoCPUs: Int64 { load.reservedNanoCPUs }
    var reservedMemoryBytes: Int64 { load.reservedMemoryBytes }
    var taskCount: Int { load.taskCount }
    var hostPorts: Set<HostPort> { load.hostPorts }

    mutating func add(serviceID: ObjectID, template: TaskTemplate, hostPorts ports: [HostPort]) {
        load.add(serviceID: serviceID, template: template, hostPorts: ports)
    }

    func tasks(of serviceID: ObjectID) -> Int { load.tasksPerService[serviceID] ?? 0 }
}

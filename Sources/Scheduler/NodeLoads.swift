import ClusterState

/// What the placed tasks hold on one node: reserved resources, task counts
/// (all, and per service) and host ports.
struct NodeLoad: Sendable, Equatable {
    var reservedNanoCPUs: Int64 = 0
    var reservedMemoryBytes: Int64 = 0
    var taskCount = 0
    var tasksPerService: [ObjectID: Int] = [:]
    var hostPorts: Set<HostPort> = []

    mutating func add(serviceID: ObjectID, template: TaskTemplate, hostPorts ports: [HostPort]) {
        reservedNanoCPUs += template.resources.reservedNanoCPUs
        reservedMemoryBytes += template.resources.reservedMemoryBytes
        taskCount += 1
        tasksPerService[serviceID, default: 0] += 1
        for port in ports { hostPorts.insert(port) }
    }

    mutating func remove(serviceID: ObjectID, template: TaskTemplate, hostPorts ports: [HostPort]) {
        reservedNanoCPUs -= template.resources.reservedNanoCPUs
        reservedMemoryBytes -= template.resources.reservedMemoryBytes
        taskCount -= 1
        let remaining = (tasksPerService[serviceID] ?? 0) - 1
        tasksPerService[serviceID] = remaining > 0 ? remaining : nil
        for port in ports { hostPorts.remove(port) }
    }
}

/// The load of every node, kept across scheduling passes so that a pass
/// costs what its pending tasks cost, not what every task in the store
/// costs: ``Scheduler/schedule(nodes:pending:loads:)`` reads it and adds its
/// own assignments; the caller adds or removes the tasks that start or end
/// holding a node by other means (``add(_:)``, ``remove(_:)``).
///
/// A task holds its node from assignment until it is terminal (as in
/// ``Scheduler/schedule(nodes:tasks:)``). Only looked up by node id, never
/// iterated, so the dictionary's order never reaches a decision.
public struct NodeLoads: Sendable, Equatable {
    var loadByNode: [ObjectID: NodeLoad] = [:]

    public init() {}

    /// The loads of `tasks`: every non-terminal task with a node that is
    /// past pending (pending tasks are what a pass places).
    public init(tasks: [ServiceTask]) {
        for task in tasks where Self.holdsNode(task) { add(task) }
    }

    /// Counts `task` on its node (no-op for a task that holds none).
    public mutating func add(_ task: ServiceTask) {
        guard let nodeID = task.nodeID else { return }
        loadByNode[nodeID, default: NodeLoad()].add(serviceID: task.serviceID, template: task.template, hostPorts: HostPort.of(task.template))
    }

    /// Stops counting `task` on its node: call it when a counted task ends.
    public mutating func remove(_ task: ServiceTask) {
        guard let nodeID = task.nodeID, loadByNode[nodeID] != nil else { return }
        loadByNode[nodeID]!.remove(serviceID: task.serviceID, template: task.template, hostPorts: HostPort.of(task.template))
        if loadByNode[nodeID]!.taskCount <= 0 { loadByNode[nodeID] = nil }
    }

    func load(of nodeID: ObjectID) -> NodeLoad { loadByNode[nodeID] ?? NodeLoad() }

    /// True for a task that holds resources on its node.
    static func holdsNode(_ task: ServiceTask) -> Bool {
        task.nodeID != nil && !task.status.state.isTerminal && task.status.state != .pending && task.status.state != .new
    }
}

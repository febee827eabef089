import ClusterState

/// A container the agent runs for a service task, as the node's container
/// list shows it: named and labelled as docker names and labels swarm task
/// containers (`web.1.<task id>`, `com.docker.swarm.*`), so the same
/// filters and templates work.
public struct TaskContainer: Sendable, Equatable {
    public var containerID: String
    public var task: ServiceTask
    /// nil when the manager did not send it (an older manager): the service id stands in.
    public var serviceName: String?

    public init(containerID: String, task: ServiceTask, serviceName: String?) {
        self.containerID = containerID
        self.task = task
        self.serviceName = serviceName
    }

    /// `SERVICE.SLOT` (global services: `SERVICE.NODEID`), docker's task name.
    public var taskName: String {
        let service = serviceName ?? task.serviceID.rawValue
        return "\(service).\(task.slot > 0 ? String(task.slot) : (task.nodeID?.rawValue ?? "0"))"
    }

    /// `SERVICE.SLOT.TASKID`, as docker names the container.
    public var name: String { taskName + "." + task.id.rawValue }

    public var labels: [String: String] {
        var labels = [
            "com.docker.swarm.service.id": task.serviceID.rawValue,
            "com.docker.swarm.task": "",
            "com.docker.swarm.task.id": task.id.rawValue,
            "com.docker.swarm.task.name": taskName,
        ]
        if let serviceName { labels["com.docker.swarm.service.name"] = serviceName }
        if let node = task.nodeID { labels["com.docker.swarm.node.id"] = node.rawValue }
        return labels
    }
}

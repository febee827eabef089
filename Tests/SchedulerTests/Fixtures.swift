import Scheduler
import ClusterState

/// Builds a ``ClusterState`` by applying commands at consecutive indexes, as a manager does.
struct Cluster {
    var state = ClusterState()
    var index: UInt64 = 0
    var time: Int64 = 1_000

    static let gibibyte: Int64 = 1 << 30
    static let cpu: Int64 = 1_000_000_000

    mutating func apply(_ command: ClusterCommand) {
        index += 1
        do {
            try state.apply(command, context: ApplyContext(index: index, timeMilliseconds: time))
        } catch {
            preconditionFailure("fixture command \(command) failed: \(error)")
        }
    }

    mutating func addNode(_ id: ObjectID, state nodeState: Node.State = .ready, availability: Node.Availability = .active,
                          role: Node.Role = .worker, labels: [String: String] = [:], cpus: Int64 = 4, memoryGiB: Int64 = 8,
                          platform: String = "linux/amd64") {
        apply(.createNode(id: id, spec: Node.Spec(role: role, availability: availability, labels: labels),
                          status: Node.Status(state: nodeState, hostname: "host-\(id)", platform: platform,
                                              resources: Node.Resources(nanoCPUs: cpus * Self.cpu, memoryBytes: memoryGiB * Self.gibibyte)),
                          managerStatus: nil))
    }

    mutating func addService(_ id: ObjectID, replicas: Int = 1, configure: (inout TaskTemplate) -> Void = { _ in }) {
        var template = TaskTemplate(image: "busybox:latest")
        configure(&template)
        apply(.createService(id: id, spec: Service.Spec(name: "svc-\(id)", mode: .replicated(replicas: replicas), task: template)))
    }

    /// Pending tasks `<service>-<slot>` for slots `slots`.
    mutating func addTasks(_ serviceID: ObjectID, slots: ClosedRange<Int>, nodeID: ObjectID? = nil) {
        apply(.createTasks(slots.map { ClusterCommand.NewTask(id: ObjectID("\(serviceID)-\($0)")!, serviceID: serviceID, slot: $0, nodeID: nodeID) }))
    }

    /// Assigns a task and reports it running.
    mutating func run(_ taskID: ObjectID, on nodeID: ObjectID) {
        apply(.assignTask(id: taskID, expectedVersion: state.task(taskID)!.meta.version, nodeID: nodeID))
        apply(.updateTaskStatus(id: taskID, status: ServiceTask.Status(state: .running, timestampMilliseconds: time)))
    }
}


extension SchedulingDecision {
    /// task id -> node id, for assertions.
    var placements: [String: String] {
        Dictionary(uniqueKeysWithValues: assignments.map { ($0.taskID.rawValue, $0.nodeID.rawValue) })
    }

    /// How many tasks went to each node.
    var tasksPerNode: [String: Int] {
        assignments.reduce(into: [:]) { $0[$1.nodeID.rawValue, default: 0] += 1 }
    }

    var reasons: [String: String] {
        Dictionary(uniqueKeysWithValues: unplaced.map { ($0.taskID.rawValue, $0.reason) })
    }
}

import ClusterState
import Foundation
import Scheduler

/// `shoal-bench scheduler`: the Scheduler core placing `taskCount` tasks on
/// `nodeCount` nodes, in passes as the leader loop runs it. Each pass adds
/// one service's pending tasks (a batch) and hands the scheduler every node,
/// the batch and the loads of the tasks placed so far (a ``NodeLoads`` the
/// scheduler updates with its assignments), then marks the assignments as
/// the store would (node set, state assigned). `--full-scan` hands it every
/// task instead (``Scheduler/schedule(nodes:tasks:)``, the leader loop's
/// path today), which recounts every placed task on every pass.
///
/// Nodes: one in ten is a manager; labels zone=z1...z5 (round robin),
/// 16 CPUs and 64 GiB each. Every service has the constraints
/// `node.labels.zone!=z3` and `node.role==worker`, the preference
/// `spread=node.labels.zone` and reserves 0.01 CPU and 32 MiB per task, so
/// every pass runs the filters, the spread tree and the resource counts.
/// The placements are checked after the run (constraints held, zones
/// balanced) so that a fast wrong scheduler cannot pass for a fast one.
struct SchedulerBenchmark {
    struct Options {
        var nodeCount = 10_000
        var taskCount = 1_000_000
        var batchTasks = 10_000
        /// Hand the scheduler every task each pass (as `schedule(state)` does today) instead of a kept NodeLoads.
        var fullScan = false

        init(parsing arguments: [String]) throws {
            var rest = arguments[...]
            while let flag = rest.popFirst() {
                if flag == "--full-scan" {
                    fullScan = true
                    continue
                }
                guard let text = rest.popFirst(), let value = Int(text), value > 0 else {
                    throw BenchmarkError(description: "\(flag) needs a positive whole number\n\(Self.usage)")
                }
                switch flag {
                case "--nodes": nodeCount = value
                case "--tasks": taskCount = value
                case "--batch": batchTasks = value
                default: throw BenchmarkError(description: "unknown option \(flag)\n\(Self.usage)")
                }
            }
        }

        static let usage = "usage: shoal-bench scheduler [--nodes N] [--tasks N] [--batch N] [--full-scan]"
    }

    static let zones = ["z1", "z2", "z3", "z4", "z5"]
    static let excludedZone = "z3"
    static let managerEveryNodes = 10
    static let gibibyte: Int64 = 1 << 30
    static let mebibyte: Int64 = 1 << 20

    let options: Options

    func run() throws {
        let nodes = try makeNodes()
        var tasks: [ServiceTask] = []
        tasks.reserveCapacity(options.taskCount)
        let scheduler = Scheduler()
        var schedulingNanoseconds: UInt64 = 0
        var passes = 0
        var unplaced = 0
        var loads = NodeLoads()
        let start = MonotonicClock.nanoseconds
        var serviceNumber = 0
        while tasks.count < options.taskCount {
            serviceNumber += 1
            let batch = min(options.batchTasks, options.taskCount - tasks.count)
            let first = tasks.count
            tasks += makePendingTasks(service: serviceNumber, count: batch, index: UInt64(passes + 2))

            let passStart = MonotonicClock.nanoseconds
            let decision = options.fullScan
                ? scheduler.schedule(nodes: nodes, tasks: tasks)
                : scheduler.schedule(nodes: nodes, pending: Array(tasks[first...]), loads: &loads)
            schedulingNanoseconds += MonotonicClock.nanoseconds - passStart
            passes += 1
            unplaced += decision.unplaced.count

            // The store's side of the pass: the batch's tasks take their nodes.
            var batchIndex: [ObjectID: Int] = [:]
            batchIndex.reserveCapacity(batch)
            for index in first..<tasks.count { batchIndex[tasks[index].id] = index }
            for assignment in decision.assignments {
                guard let index = batchIndex[assignment.taskID] else {
                    throw BenchmarkError(description: "pass \(passes) assigned \(assignment.taskID), which was not pending")
                }
                tasks[index].nodeID = assignment.nodeID
                tasks[index].status.state = .assigned
            }
        }
        let totalSeconds = Double(MonotonicClock.nanoseconds - start) / 1e9
        let schedulingSeconds = Double(schedulingNanoseconds) / 1e9
        let placed = tasks.count - unplaced
        try check(tasks: tasks, nodes: nodes)

        print("scheduler.full_scan \(options.fullScan ? 1 : 0) bool")
        print("scheduler.nodes \(options.nodeCount) nodes")
        print("scheduler.tasks \(options.taskCount) tasks")
        print("scheduler.passes \(passes) passes")
        print("scheduler.unplaced \(unplaced) tasks")
        print("scheduler.placements_per_second \(Int(Double(placed) / schedulingSeconds)) placements/s")
        print("scheduler.scheduling_seconds \(String(format: "%.3f", schedulingSeconds)) s")
        print("scheduler.total_seconds \(String(format: "%.3f", totalSeconds)) s")
        print("scheduler.peak_rss \(ProcessMemory.peakResidentMebibytes()) MiB")
    }

    /// Nodes come from the store, as the leader reads them.
    private func makeNodes() throws -> [Node] {
        var state = ClusterState()
        for number in 0..<options.nodeCount {
            let id = ObjectID(String(format: "node-%06d", number))!
            let role: Node.Role = number % Self.managerEveryNodes == 0 ? .manager : .worker
            let labels = ["zone": Self.zones[number % Self.zones.count], "rack": "r\(number % 97)"]
            let command = ClusterCommand.createNode(
                id: id, spec: Node.Spec(role: role, labels: labels),
                status: Node.Status(state: .ready, hostname: "host-\(number)",
                                    resources: Node.Resources(nanoCPUs: 16_000_000_000, memoryBytes: 64 * Self.gibibyte)),
                managerStatus: nil)
            try state.apply(command, context: ApplyContext(index: UInt64(number + 1), timeMilliseconds: 0))
        }
        return state.nodes
    }

    private func makePendingTasks(service: Int, count: Int, index: UInt64) -> [ServiceTask] {
        let serviceID = ObjectID(String(format: "svc-%04d", service))!
        var template = TaskTemplate(image: "busybox:latest")
        template.command = ["sleep", "3600"]
        template.placement.constraints = ["node.labels.zone!=\(Self.excludedZone)", "node.role==worker"]
        template.placement.preferences = ["spread=node.labels.zone"]
        template.resources.reservedNanoCPUs = 10_000_000
        template.resources.reservedMemoryBytes = 32 * Self.mebibyte
        return (1...count).map { slot in
            let id = ObjectID(String(format: "task-%04d-%06d", service, slot))!
            return ServiceTask(meta: ObjectMeta(id: id, version: index, createdIndex: index, createdAtMilliseconds: 0, updatedAtMilliseconds: 0),
                               serviceID: serviceID, slot: slot, nodeID: nil, desiredState: .running, template: template,
                               serviceForceUpdate: 0, status: ServiceTask.Status(state: .pending))
        }
    }

    /// Every placed task honours its constraints, and each service's tasks
    /// are spread evenly over the allowed zones (at most one apart).
    private func check(tasks: [ServiceTask], nodes: [Node]) throws {
        var nodeByID: [ObjectID: Node] = [:]
        for node in nodes { nodeByID[node.id] = node }
        var perServiceZone: [ObjectID: [String: Int]] = [:]
        for task in tasks {
            guard let nodeID = task.nodeID, let node = nodeByID[nodeID] else { continue }
            let zone = node.spec.labels["zone"] ?? ""
            if zone == Self.excludedZone || node.spec.role != .worker {
                throw BenchmarkError(description: "task \(task.id) placed on \(nodeID) (zone \(zone), role \(node.spec.role)) against its constraints")
            }
            perServiceZone[task.serviceID, default: [:]][zone, default: 0] += 1
        }
        for (serviceID, zones) in perServiceZone {
            let counts = Self.zones.filter { $0 != Self.excludedZone }.map { zones[$0] ?? 0 }
            if counts.max()! - counts.min()! > 1 {
                throw BenchmarkError(description: "service \(serviceID) is not spread over the zones: \(zones)")
            }
        }
    }
}

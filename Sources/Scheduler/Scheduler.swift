import ClusterState

/// Decides which node each pending task runs on (swarmkit's scheduler,
/// without its clock and store): a pipeline of filters (node ready,
/// availability active, constraints, platform, resources, host ports, max
/// replicas per node), then spread over placement preferences, then least
/// loaded, ties broken by node id.
///
/// The manager's leader calls ``schedule(_:)`` after applying changes that
/// created pending tasks or freed capacity, and proposes the returned
/// assignments. Pure and deterministic: the same state gives the same
/// decision whatever order objects were inserted in.
///
/// Cost: pending tasks are grouped by service and template; each group runs
/// the filters once per node (O(nodes)), then places its N tasks through a
/// heap, re-running only the dynamic filters on the node that took a task:
/// O(nodes + N log nodes) per group, not O(N × nodes). What placed tasks
/// hold is a ``NodeLoads``, which a caller placing batches keeps across
/// passes (``schedule(nodes:pending:loads:)``), so a batch does not pay for
/// every task placed before it.
public struct Scheduler: Sendable {
    /// A defect to plant, for checker tests. Ignored by release builds.
    public var plantedBug: ServicesPlantedBug?

    public init(plantedBug: ServicesPlantedBug? = nil) {
        self.plantedBug = plantedBug
    }

    /// Schedules every pending task of `state` whose desired state is still running.
    public func schedule(_ state: ClusterState) -> SchedulingDecision {
        schedule(nodes: state.nodes, tasks: state.tasks)
    }

    /// The same over explicit lists: `tasks` are all tasks (the non-terminal
    /// ones with a node hold resources there; the pending ones are placed).
    /// Costs O(tasks) to count the loads: a caller that schedules often keeps
    /// a ``NodeLoads`` instead and calls ``schedule(nodes:pending:loads:)``.
    public func schedule(nodes: [Node], tasks: [ServiceTask]) -> SchedulingDecision {
        var loads = NodeLoads()
        var pending: [ServiceTask] = []
        for task in tasks {
            if NodeLoads.holdsNode(task) {
                loads.add(task)
            } else if task.status.state == .pending || task.status.state == .new {
                pending.append(task)
            }
        }
        return schedule(nodes: nodes, pending: pending, loads: &loads)
    }

    /// Places `pending` (tasks in state new or pending; others are ignored)
    /// on `nodes`, given what the placed tasks hold (`loads`), and adds the
    /// assignments it returns to `loads`. O(nodes + N log nodes) for N
    /// pending tasks of one service, whatever the number of tasks placed
    /// before. The caller proposes the assignments; if the store refuses
    /// one, it removes that task from `loads` again (``NodeLoads/remove(_:)``
    /// with the task as assigned) or rebuilds the loads from the store.
    public func schedule(nodes unsortedNodes: [Node], pending candidates: [ServiceTask], loads: inout NodeLoads) -> SchedulingDecision {
        let nodes = unsortedNodes.sorted { $0.id < $1.id }
        var infos = nodes.map { NodeInfo(node: $0, load: loads.load(of: $0.id)) }
        let taskCountsBefore = infos.map(\.taskCount)
        var nodeIndex: [ObjectID: Int] = [:]
        nodeIndex.reserveCapacity(nodes.count)
        for (index, node) in nodes.enumerated() { nodeIndex[node.id] = index }

        var pending = candidates.filter { ($0.status.state == .pending || $0.status.state == .new) && $0.desiredState <= .running }
        pending.sort { ($0.serviceID, $0.slot, $0.id) < ($1.serviceID, $1.slot, $1.id) }

        // Group identical tasks; tasks bound to a node already (global services) go first, as they have one choice.
        var groups: [TaskGroup] = []
        var groupIndex: [TaskGroup.Key: Int] = [:]
        var bound: [(task: ServiceTask, group: Int)] = []
        for task in pending {
            let index: Int
            // Tasks come sorted by service, and a service's tasks nearly always share one template: skip the hashing.
            if let last = groups.indices.last, groups[last].serviceID == task.serviceID, groups[last].template == task.template {
                index = last
            } else if let existing = groupIndex[TaskGroup.Key(serviceID: task.serviceID, template: task.template)] {
                index = existing
            } else {
                index = groups.count
                groupIndex[TaskGroup.Key(serviceID: task.serviceID, template: task.template)] = index
                groups.append(TaskGroup(serviceID: task.serviceID, template: task.template,
                                        ignoresConstraints: ServicesPlantedBug.isPlanted(.schedulerIgnoresConstraints, in: plantedBug)))
            }
            if task.nodeID != nil { bound.append((task, index)) } else { groups[index].tasks.append(task) }
        }

        var decision = SchedulingDecision()
        for (task, group) in bound {
            placeBound(task, group: &groups[group], infos: &infos, nodeIndex: nodeIndex, decision: &decision)
        }
        for index in groups.indices where !groups[index].tasks.isEmpty {
            place(&groups[index], infos: &infos, decision: &decision)
        }
        for group in groups { decision.filterEvaluations += group.pipeline?.evaluations ?? 0 }
        decision.unplaced.sort { ($0.serviceID, $0.taskID) < ($1.serviceID, $1.taskID) }
        for index in infos.indices where infos[index].taskCount != taskCountsBefore[index] {
            loads.loadByNode[infos[index].node.id] = infos[index].load
        }
        return decision
    }

    private func placeBound(_ task: ServiceTask, group: inout TaskGroup, infos: inout [NodeInfo], nodeIndex: [ObjectID: Int],
                            decision: inout SchedulingDecision) {
        let nodeID = task.nodeID!
        guard group.prepare() else {
            decision.unplaced.append(.init(taskID: task.id, serviceID: task.serviceID, reason: group.invalidReason!))
            return
        }
        guard let index = nodeIndex[nodeID] else {
            decision.unplaced.append(.init(taskID: task.id, serviceID: task.serviceID, reason: "node \(nodeID) is not in the cluster"))
            return
        }
        if let failure = group.pipeline!.firstFailure(infos[index]) {
            decision.unplaced.append(.init(taskID: task.id, serviceID: task.serviceID, reason: PlacementFailure.reason(counts: [failure: 1])))
            return
        }
        infos[index].add(serviceID: task.serviceID, template: task.template, hostPorts: group.hostPorts)
        decision.assignments.append(.init(taskID: task.id, nodeID: nodeID, expectedVersion: task.meta.version))
    }

    private func place(_ group: inout TaskGroup, infos: inout [NodeInfo], decision: inout SchedulingDecision) {
        guard group.prepare() else {
            for task in group.tasks {
                decision.unplaced.append(.init(taskID: task.id, serviceID: task.serviceID, reason: group.invalidReason!))
            }
            return
        }
        var pipeline = group.pipeline!
        defer { group.pipeline = pipeline }
        let serviceID = group.serviceID
        var failures: [PlacementFailure: Int] = [:]
        var candidates: [Int] = []
        for index in infos.indices {
            if let failure = pipeline.firstFailure(infos[index]) {
                failures[failure, default: 0] += 1
            } else {
                candidates.append(index)
            }
        }
        var tree = SpreadTree(preferences: group.preferences, nodes: infos, candidates: candidates, serviceID: serviceID)
        let hostPorts = group.hostPorts
        for (position, task) in group.tasks.enumerated() {
            let placed = tree.place { index in
                infos[index].add(serviceID: serviceID, template: task.template, hostPorts: hostPorts)
                decision.assignments.append(.init(taskID: task.id, nodeID: infos[index].node.id, expectedVersion: task.meta.version))
                if let failure = pipeline.firstDynamicFailure(infos[index]) {
                    failures[failure, default: 0] += 1
                    return nil
                }
                return NodeCandidate(serviceTasks: infos[index].tasks(of: serviceID), totalTasks: infos[index].taskCount, nodeIndex: index)
            }
            if placed == nil {
                let reason = PlacementFailure.reason(counts: failures)
                for rest in group.tasks[position...] {
                    decision.unplaced.append(.init(taskID: rest.id, serviceID: serviceID, reason: reason))
                }
                return
            }
        }
    }
}

/// Pending tasks of one service with one template: they need the same
/// filters, so the rules are parsed and the filters built once.
struct TaskGroup {
    struct Key: Hashable {
        var serviceID: ObjectID
        var template: TaskTemplate
    }

    let serviceID: ObjectID
    let template: TaskTemplate
    var tasks: [ServiceTask] = []
    var preferences: [PlacementPreference] = []
    var hostPorts: [HostPort] = []
    var pipeline: FilterPipeline?
    var invalidReason: String?
    /// ``ServicesPlantedBug/schedulerIgnoresConstraints``.
    let ignoresConstraints: Bool

    init(serviceID: ObjectID, template: TaskTemplate, ignoresConstraints: Bool = false) {
        self.serviceID = serviceID
        self.template = template
        self.ignoresConstraints = ignoresConstraints
    }

    /// Parses the placement rules on first use; false if they are malformed.
    mutating func prepare() -> Bool {
        if pipeline != nil { return true }
        if invalidReason != nil { return false }
        do {
            let constraints = try PlacementConstraint.parse(all: template.placement.constraints)
            preferences = try PlacementPreference.parse(all: template.placement.preferences)
            hostPorts = HostPort.of(template)
            pipeline = FilterPipeline(serviceID: serviceID, template: template, constraints: ignoresConstraints ? [] : constraints)
            return true
        } catch {
            invalidReason = error.description
            return false
        }
    }
}

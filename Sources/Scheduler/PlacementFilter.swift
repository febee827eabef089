import ClusterState

/// One stage of the scheduler's pipeline (swarmkit's filters). A filter is
/// built for one group of identical tasks, so it holds what those tasks
/// need; `check` says why a node cannot take one more of them, or nil.
/// Static filters depend only on the node and the service; dynamic ones on
/// what the batch has placed so far, so only they run again on a node that
/// just received a task.
protocol PlacementFilter {
    var isDynamic: Bool { get }
    func check(_ node: NodeInfo) -> PlacementFailure?
}

struct ReadyFilter: PlacementFilter {
    var isDynamic: Bool { false }
    func check(_ node: NodeInfo) -> PlacementFailure? {
        node.node.status.state == .ready ? nil : .nodeNotReady
    }
}

/// Only active nodes take new tasks; paused ones keep theirs, drained ones lose them.
struct AvailabilityFilter: PlacementFilter {
    var isDynamic: Bool { false }
    func check(_ node: NodeInfo) -> PlacementFailure? {
        switch node.node.spec.availability {
        case .active: return nil
        case .pause: return .nodePaused
        case .drain: return .nodeDrained
        }
    }
}

struct ConstraintFilter: PlacementFilter {
    var constraints: [PlacementConstraint]
    var isDynamic: Bool { false }
    func check(_ node: NodeInfo) -> PlacementFailure? {
        for (position, constraint) in constraints.enumerated() where !constraint.isSatisfied(by: node.node) {
            return .constraintNotSatisfied(position: position, constraint: constraint.text)
        }
        return nil
    }
}

struct PlatformFilter: PlacementFilter {
    var platforms: [Platform]
    var text: String
    var isDynamic: Bool { false }
    func check(_ node: NodeInfo) -> PlacementFailure? {
        let platform = Platform(node.node.status.platform)
        return platforms.contains { platform.supports($0) } ? nil : .platformNotSupported(text)
    }
}

/// Reservations, not limits, are what a node must have free: the node's
/// resources minus the reservations of its non-terminal tasks.
struct ResourcesFilter: PlacementFilter {
    var nanoCPUs: Int64
    var memoryBytes: Int64
    var isDynamic: Bool { true }
    func check(_ node: NodeInfo) -> PlacementFailure? {
        let available = node.node.status.resources
        if memoryBytes > 0 && available.memoryBytes - node.reservedMemoryBytes < memoryBytes {
            return .insufficientMemory(bytes: memoryBytes)
        }
        if nanoCPUs > 0 && available.nanoCPUs - node.reservedNanoCPUs < nanoCPUs {
            return .insufficientCPU(nanoCPUs: nanoCPUs)
        }
        return nil
    }
}

struct HostPortFilter: PlacementFilter {
    var ports: [HostPort]
    var isDynamic: Bool { true }
    func check(_ node: NodeInfo) -> PlacementFailure? {
        for (position, port) in ports.enumerated() where node.hostPorts.contains(port) {
            return .hostPortInUse(position: position, port: port.description)
        }
        return nil
    }
}

struct MaxReplicasFilter: PlacementFilter {
    var serviceID: ObjectID
    var limit: Int
    var isDynamic: Bool { true }
    func check(_ node: NodeInfo) -> PlacementFailure? {
        node.tasks(of: serviceID) >= limit ? .maxReplicasPerNode(limit) : nil
    }
}

/// The filters that apply to one task group, in order, counting how many
/// times a filter looked at a node (the scaling tests read the count).
struct FilterPipeline {
    private var staticFilters: [any PlacementFilter] = []
    private var dynamicFilters: [any PlacementFilter] = []
    private(set) var evaluations = 0

    /// Filters that could never fail for this template are left out.
    init(serviceID: ObjectID, template: TaskTemplate, constraints: [PlacementConstraint]) {
        staticFilters = [ReadyFilter(), AvailabilityFilter()]
        if !constraints.isEmpty { staticFilters.append(ConstraintFilter(constraints: constraints)) }
        let platforms = template.placement.platforms
        if !platforms.isEmpty {
            staticFilters.append(PlatformFilter(platforms: platforms.map(Platform.init), text: platforms.joined(separator: " or ")))
        }
        let resources = template.resources
        if resources.reservedNanoCPUs > 0 || resources.reservedMemoryBytes > 0 {
            dynamicFilters.append(ResourcesFilter(nanoCPUs: resources.reservedNanoCPUs, memoryBytes: resources.reservedMemoryBytes))
        }
        let ports = HostPort.of(template)
        if !ports.isEmpty { dynamicFilters.append(HostPortFilter(ports: ports)) }
        if template.placement.maxReplicasPerNode > 0 {
            dynamicFilters.append(MaxReplicasFilter(serviceID: serviceID, limit: template.placement.maxReplicasPerNode))
        }
    }

    /// The first filter that refuses `node`, or nil if every one accepts it.
    mutating func firstFailure(_ node: NodeInfo) -> PlacementFailure? {
        for filter in staticFilters {
            evaluations += 1
            if let failure = filter.check(node) { return failure }
        }
        return firstDynamicFailure(node)
    }

    /// After `node` received a task: only what the task consumed can have changed.
    mutating func firstDynamicFailure(_ node: NodeInfo) -> PlacementFailure? {
        for filter in dynamicFilters {
            evaluations += 1
            if let failure = filter.check(node) { return failure }
        }
        return nil
    }
}

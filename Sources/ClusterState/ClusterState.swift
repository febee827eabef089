/// The replicated state machine of a Shoal cluster: nodes, services, tasks,
/// secrets, configs, networks, routes and rollouts.
///
/// Every manager holds one and applies the committed ``ClusterCommand``s in
/// log order with ``apply(_:context:)``. It reads no clock and draws no
/// randomness — ids and timestamps arrive inside the commands — so every
/// manager reaches the same state. Iteration order never comes from a
/// dictionary: the accessors return objects sorted by id.
public struct ClusterState: Sendable, Equatable {
    var nodeTable: [ObjectID: Node] = [:]
    var serviceTable: [ObjectID: Service] = [:]
    var taskTable: [ObjectID: ServiceTask] = [:]
    /// Task ids by service, so a service's tasks are found without a scan
    /// of every task (the orchestrator reconciles one service at a time).
    /// Derived from `taskTable`: kept by createTasks/removeTasks, rebuilt on restore.
    var taskIDsByService: [ObjectID: Set<ObjectID>] = [:]
    var secretTable: [ObjectID: Secret] = [:]
    var configTable: [ObjectID: Config] = [:]
    /// Name to id of the secrets and configs, so that a create checks that
    /// its name is free without scanning the table (O(n) per write). Derived
    /// from the tables: kept by create/remove, rebuilt on restore.
    var secretIDsByName: [String: ObjectID] = [:]
    var configIDsByName: [String: ObjectID] = [:]
    var networkTable: [ObjectID: Network] = [:]
    var routeTable: [ObjectID: Route] = [:]
    var rolloutTable: [ObjectID: Rollout] = [:]
    /// The log index of the last command applied (refused ones included).
    public internal(set) var appliedIndex: UInt64 = 0

    public init() {}

    // MARK: Reading

    public var nodes: [Node] { nodeTable.values.sorted { $0.id < $1.id } }
    public var services: [Service] { serviceTable.values.sorted { $0.id < $1.id } }
    public var tasks: [ServiceTask] { taskTable.values.sorted { $0.id < $1.id } }
    public var secrets: [Secret] { secretTable.values.sorted { $0.id < $1.id } }
    public var configs: [Config] { configTable.values.sorted { $0.id < $1.id } }
    public var networks: [Network] { networkTable.values.sorted { $0.id < $1.id } }
    public var routes: [Route] { routeTable.values.sorted { $0.id < $1.id } }
    public var rollouts: [Rollout] { rolloutTable.values.sorted { $0.id < $1.id } }

    public func node(_ id: ObjectID) -> Node? { nodeTable[id] }
    public func service(_ id: ObjectID) -> Service? { serviceTable[id] }
    public func task(_ id: ObjectID) -> ServiceTask? { taskTable[id] }
    public func secret(_ id: ObjectID) -> Secret? { secretTable[id] }
    public func config(_ id: ObjectID) -> Config? { configTable[id] }
    public func network(_ id: ObjectID) -> Network? { networkTable[id] }
    public func route(_ id: ObjectID) -> Route? { routeTable[id] }

    public func service(named name: String) -> Service? {
        serviceTable.values.first { $0.spec.name == name }
    }

    /// A service's tasks, by slot then id.
    public func tasks(ofService serviceID: ObjectID) -> [ServiceTask] {
        (taskIDsByService[serviceID] ?? []).map { taskTable[$0]! }.sorted { ($0.slot, $0.id) < ($1.slot, $1.id) }
    }

    public func tasks(onNode nodeID: ObjectID) -> [ServiceTask] {
        taskTable.values.filter { $0.nodeID == nodeID }.sorted { $0.id < $1.id }
    }

    // MARK: Applying

    /// Applies one committed command at `context.index`. On error nothing
    /// changed (apart from ``appliedIndex``) and the error says why; the
    /// proposer reports it to its client. Deterministic and total: every
    /// manager gets the same result for the same command and state.
    @discardableResult
    public mutating func apply(_ command: ClusterCommand, context: ApplyContext) throws(ClusterStateError) -> [ClusterEvent] {
        precondition(context.index > appliedIndex, "applying index \(context.index) after \(appliedIndex)")
        appliedIndex = context.index
        if case .batch(let commands) = command {
            if Self.touchDistinctTasks(commands) {
                // Checked first, then applied in place: the commands cannot
                // affect one another's checks, and a copy of the tables per
                // batch cost O(tasks) (the leader's and agents' batches are
                // most of the log).
                for command in commands { _ = try applyOne(command, context, effects: .check) }
                var events: [ClusterEvent] = []
                for command in commands {
                    do {
                        events += try applyOne(command, context)
                    } catch {
                        preconditionFailure("command \(command) passed its check but failed to apply: \(error)")
                    }
                }
                return events
            }
            // Apply to a copy so that a failure half-way leaves no trace.
            var copy = self
            let events = try copy.applyOne(command, context)
            self = copy
            return events
        }
        return try applyOne(command, context)
    }

    /// True when every command of a batch writes only tasks (and node
    /// statuses) that no other command of the batch names, and none creates
    /// or removes what another's checks read (services, nodes): then each
    /// command's check gives the same answer before the batch as at its
    /// turn within it.
    static func touchDistinctTasks(_ commands: [ClusterCommand]) -> Bool {
        var tasks = Set<ObjectID>()
        var nodes = Set<ObjectID>()
        for command in commands {
            switch command {
            case .updateTaskStatus(let id, _), .assignTask(let id, _, _), .setTaskDesiredState(let id, _, _):
                if !tasks.insert(id).inserted { return false }
            case .createTasks(let newTasks):
                for task in newTasks where !tasks.insert(task.id).inserted { return false }
            case .removeTasks(let ids):
                for id in ids where !tasks.insert(id).inserted { return false }
            case .updateNodeStatus(let id, _):
                if !nodes.insert(id).inserted { return false }
            default:
                return false
            }
        }
        return true
    }

    /// Checks `command` as ``apply(_:context:)`` would at `context.index`,
    /// without changing anything: throws the error `apply` would throw.
    ///
    /// The leader calls it before proposing, so that a command the state
    /// refuses never reaches the log. It runs the very checks of `apply` but
    /// stops before the first write, so it costs what the checks cost, never
    /// a copy of the tables. A batch whose commands name distinct tasks
    /// (``touchDistinctTasks(_:)``, as `apply` decides) is checked command by
    /// command the same way; any other batch, whose later commands must see
    /// the earlier ones, is checked on a copy.
    public func validate(_ command: ClusterCommand, context: ApplyContext) throws(ClusterStateError) {
        // Copying the struct only retains its tables; `.check` never writes
        // to them, so no copy-on-write copy is made.
        var scratch = self
        if case .batch(let commands) = command {
            if Self.touchDistinctTasks(commands) {
                // An agent's status batch (every report of a worker is one):
                // a copy of the tables each cost O(tasks) on the Raft thread,
                // O(tasks × workers) as a fleet reports its tasks running.
                for command in commands { _ = try scratch.applyOne(command, context, effects: .check) }
                return
            }
            _ = try scratch.applyOne(command, context)
        } else {
            _ = try scratch.applyOne(command, context, effects: .check)
        }
    }

    /// How far ``applyOne(_:_:effects:)`` goes: `.check` stops each command
    /// after its checks, before its first write.
    private enum Effects { case check, apply }

    private mutating func applyOne(_ command: ClusterCommand, _ context: ApplyContext, effects: Effects = .apply) throws(ClusterStateError) -> [ClusterEvent] {
        switch command {
        case .createNode(let id, let spec, let status, let managerStatus):
            if nodeTable[id] != nil { throw .alreadyExists(kind: .node, id: id) }
            try Self.validate(labels: spec.labels, field: "node labels")
            let node = Node(meta: .new(id, context), spec: spec, status: status, managerStatus: managerStatus)
            guard effects == .apply else { return [] }
            nodeTable[id] = node
            return [ClusterEvent(index: context.index, action: .created, object: .node(node))]

        case .updateNodeSpec(let id, let expectedVersion, let spec):
            var node = try existing(nodeTable, .node, id)
            try Self.check(expectedVersion, node.meta, .node)
            try Self.validate(labels: spec.labels, field: "node labels")
            if spec.role == .worker && node.spec.role == .manager && node.managerStatus != nil {
                throw .invalidSpec(field: "role", reason: "node \(id) is still a Raft member; demote it through the cluster first")
            }
            node.spec = spec
            node.meta.touch(context)
            guard effects == .apply else { return [] }
            nodeTable[id] = node
            return [ClusterEvent(index: context.index, action: .updated, object: .node(node))]

        case .updateNodeStatus(let id, let status):
            var node = try existing(nodeTable, .node, id)
            node.status = status
            node.meta.touch(context)
            guard effects == .apply else { return [] }
            nodeTable[id] = node
            return [ClusterEvent(index: context.index, action: .updated, object: .node(node))]

        case .setManagerStatus(let id, let managerStatus):
            var node = try existing(nodeTable, .node, id)
            node.managerStatus = managerStatus
            node.meta.touch(context)
            guard effects == .apply else { return [] }
            nodeTable[id] = node
            return [ClusterEvent(index: context.index, action: .updated, object: .node(node))]

        case .removeNode(let id, let expectedVersion):
            let node = try existing(nodeTable, .node, id)
            if let expectedVersion { try Self.check(expectedVersion, node.meta, .node) }
            if node.managerStatus != nil {
                throw .inUse(kind: .node, id: id, by: "the Raft group (demote it first)")
            }
            guard effects == .apply else { return [] }
            nodeTable[id] = nil
            var events = [ClusterEvent(index: context.index, action: .removed, object: .node(node))]
            // Its tasks can no longer run there: the orchestrator replaces them.
            for task in tasks(onNode: id) where !task.status.state.isTerminal {
                var orphaned = task
                orphaned.status = ServiceTask.Status(state: .orphaned, timestampMilliseconds: context.timeMilliseconds,
                                                     message: "node \(id) was removed from the cluster")
                orphaned.desiredState = .shutdown
                orphaned.meta.touch(context)
                taskTable[task.id] = orphaned
                events.append(ClusterEvent(index: context.index, action: .updated, object: .task(orphaned)))
            }
            return events

        case .createService(let id, let spec):
            if serviceTable[id] != nil { throw .alreadyExists(kind: .service, id: id) }
            try Self.validate(spec)
            if let other = service(named: spec.name) { throw .nameInUse(kind: .service, name: spec.name, id: other.id) }
            let service = Service(meta: .new(id, context), spec: spec, previousSpec: nil, forceUpdate: 0)
            guard effects == .apply else { return [] }
            serviceTable[id] = service
            return [ClusterEvent(index: context.index, action: .created, object: .service(service))]

        case .updateService(let id, let expectedVersion, let spec, let force):
            var service = try existing(serviceTable, .service, id)
            try Self.check(expectedVersion, service.meta, .service)
            try Self.validate(spec)
            if spec.name != service.spec.name {
                throw .invalidSpec(field: "name", reason: "a service cannot be renamed (it is '\(service.spec.name)')")
            }
            if spec != service.spec { service.previousSpec = service.spec }
            let paused = service.updateStatus.map { $0.state == .paused || $0.state == .rollbackPaused } ?? false
            if spec.task != service.spec.task || force || (paused && spec != service.spec) {
                // A new rollout (another update resumes a paused one, failures counted afresh).
                service.updateStatus = UpdateStatus(state: .updating, startedIndex: context.index, startedAtMilliseconds: context.timeMilliseconds,
                                                    message: "update in progress")
            }
            service.spec = spec
            if force { service.forceUpdate += 1 }
            service.meta.touch(context)
            guard effects == .apply else { return [] }
            serviceTable[id] = service
            return [ClusterEvent(index: context.index, action: .updated, object: .service(service))]

        case .rollbackService(let id, let expectedVersion):
            var service = try existing(serviceTable, .service, id)
            try Self.check(expectedVersion, service.meta, .service)
            guard let previous = service.previousSpec else {
                throw .invalidSpec(field: "rollback", reason: "service \(service.spec.name) has no previous spec to roll back to")
            }
            service.previousSpec = service.spec
            service.spec = previous
            service.updateStatus = UpdateStatus(state: .rollbackStarted, startedIndex: context.index, startedAtMilliseconds: context.timeMilliseconds,
                                                message: "manually requested rollback")
            service.meta.touch(context)
            guard effects == .apply else { return [] }
            serviceTable[id] = service
            return [ClusterEvent(index: context.index, action: .updated, object: .service(service))]

        case .setServiceUpdateStatus(let id, let expectedVersion, let state, let message):
            var service = try existing(serviceTable, .service, id)
            if let expectedVersion { try Self.check(expectedVersion, service.meta, .service) }
            guard var status = service.updateStatus else {
                throw .invalidSpec(field: "update status", reason: "service \(service.spec.name) has no rollout to report on")
            }
            status.state = state
            status.message = message
            status.completedAtMilliseconds = state == .completed || state == .rollbackCompleted ? context.timeMilliseconds : nil
            service.updateStatus = status
            service.meta.touch(context)
            guard effects == .apply else { return [] }
            serviceTable[id] = service
            return [ClusterEvent(index: context.index, action: .updated, object: .service(service))]

        case .removeService(let id, let expectedVersion):
            let service = try existing(serviceTable, .service, id)
            if let expectedVersion { try Self.check(expectedVersion, service.meta, .service) }
            if let route = routeTable.values.sorted(by: { $0.id < $1.id }).first(where: { $0.spec.backends.contains { $0.serviceID == id } || $0.spec.mirrorServiceID == id }) {
                throw .inUse(kind: .service, id: id, by: "route \(route.spec.name)")
            }
            guard effects == .apply else { return [] }
            serviceTable[id] = nil
            var events = [ClusterEvent(index: context.index, action: .removed, object: .service(service))]
            for task in tasks(ofService: id) where task.desiredState < .shutdown {
                var stopping = task
                stopping.desiredState = .shutdown
                stopping.meta.touch(context)
                taskTable[task.id] = stopping
                events.append(ClusterEvent(index: context.index, action: .updated, object: .task(stopping)))
            }
            return events

        case .createTasks(let newTasks):
            var events: [ClusterEvent] = []
            var seen = Set<ObjectID>()
            for newTask in newTasks {
                if taskTable[newTask.id] != nil || !seen.insert(newTask.id).inserted { throw .alreadyExists(kind: .task, id: newTask.id) }
                _ = try existing(serviceTable, .service, newTask.serviceID)
                if let nodeID = newTask.nodeID, nodeTable[nodeID] == nil { throw .notFound(kind: .node, id: nodeID) }
                guard newTask.slot >= 0 else { throw .invalidSpec(field: "slot", reason: "must not be negative") }
            }
            guard effects == .apply else { return [] }
            for newTask in newTasks {
                let service = serviceTable[newTask.serviceID]!
                let task = ServiceTask(
                    meta: .new(newTask.id, context), serviceID: service.id, slot: newTask.slot, nodeID: newTask.nodeID,
                    desiredState: .running, template: service.spec.task, serviceForceUpdate: service.forceUpdate,
                    status: ServiceTask.Status(state: .pending, timestampMilliseconds: context.timeMilliseconds, message: "waiting to be scheduled"),
                    restartHistoryMilliseconds: newTask.restartHistoryMilliseconds)
                taskTable[task.id] = task
                taskIDsByService[task.serviceID, default: []].insert(task.id)
                events.append(ClusterEvent(index: context.index, action: .created, object: .task(task)))
            }
            return events

        case .assignTask(let id, let expectedVersion, let nodeID):
            var task = try existing(taskTable, .task, id)
            try Self.check(expectedVersion, task.meta, .task)
            guard nodeTable[nodeID] != nil else { throw .notFound(kind: .node, id: nodeID) }
            guard task.status.state == .pending, task.nodeID == nil || task.nodeID == nodeID else {
                throw .invalidTransition(taskID: id, from: task.status.state, to: .assigned)
            }
            task.nodeID = nodeID
            task.status = ServiceTask.Status(state: .assigned, timestampMilliseconds: context.timeMilliseconds, message: "scheduled on node \(nodeID)")
            task.meta.touch(context)
            guard effects == .apply else { return [] }
            taskTable[id] = task
            return [ClusterEvent(index: context.index, action: .updated, object: .task(task))]

        case .updateTaskStatus(let id, let status):
            var task = try existing(taskTable, .task, id)
            let current = task.status.state
            if status.state < current || (current.isTerminal && status.state != current) {
                throw .invalidTransition(taskID: id, from: current, to: status.state)
            }
            if status.state == .running && current < .running { task.runningSinceMilliseconds = status.timestampMilliseconds }
            task.status = status
            task.meta.touch(context)
            guard effects == .apply else { return [] }
            taskTable[id] = task
            return [ClusterEvent(index: context.index, action: .updated, object: .task(task))]

        case .setTaskDesiredState(let id, let expectedVersion, let desiredState):
            var task = try existing(taskTable, .task, id)
            if let expectedVersion { try Self.check(expectedVersion, task.meta, .task) }
            if desiredState < task.desiredState {
                throw .invalidSpec(field: "desired state", reason: "task \(id) is already desired \(task.desiredState); it cannot go back to \(desiredState)")
            }
            task.desiredState = desiredState
            task.meta.touch(context)
            guard effects == .apply else { return [] }
            taskTable[id] = task
            return [ClusterEvent(index: context.index, action: .updated, object: .task(task))]

        case .removeTasks(let ids):
            var events: [ClusterEvent] = []
            for id in ids { _ = try existing(taskTable, .task, id) }
            guard effects == .apply else { return [] }
            for id in ids {
                guard let task = taskTable.removeValue(forKey: id) else { continue }
                taskIDsByService[task.serviceID]?.remove(id)
                if taskIDsByService[task.serviceID]?.isEmpty == true { taskIDsByService[task.serviceID] = nil }
                events.append(ClusterEvent(index: context.index, action: .removed, object: .task(task)))
            }
            return events

        case .createSecret(let id, let spec):
            if secretTable[id] != nil { throw .alreadyExists(kind: .secret, id: id) }
            try Self.validate(name: spec.name, field: "secret name")
            guard spec.data.count <= Self.maxSecretBytes else {
                throw .invalidSpec(field: "secret data", reason: "\(spec.data.count) bytes exceeds the \(Self.maxSecretBytes)-byte limit")
            }
            if let other = secretIDsByName[spec.name] { throw .nameInUse(kind: .secret, name: spec.name, id: other) }
            let secret = Secret(meta: .new(id, context), spec: spec)
            guard effects == .apply else { return [] }
            secretTable[id] = secret
            secretIDsByName[spec.name] = id
            return [ClusterEvent(index: context.index, action: .created, object: .secret(secret))]

        case .removeSecret(let id):
            let secret = try existing(secretTable, .secret, id)
            guard effects == .apply else { return [] }
            secretTable[id] = nil
            secretIDsByName[secret.spec.name] = nil
            return [ClusterEvent(index: context.index, action: .removed, object: .secret(secret))]

        case .createConfig(let id, let spec):
            if configTable[id] != nil { throw .alreadyExists(kind: .config, id: id) }
            try Self.validate(name: spec.name, field: "config name")
            guard spec.data.count <= Self.maxSecretBytes else {
                throw .invalidSpec(field: "config data", reason: "\(spec.data.count) bytes exceeds the \(Self.maxSecretBytes)-byte limit")
            }
            if let other = configIDsByName[spec.name] { throw .nameInUse(kind: .config, name: spec.name, id: other) }
            let config = Config(meta: .new(id, context), spec: spec)
            guard effects == .apply else { return [] }
            configTable[id] = config
            configIDsByName[spec.name] = id
            return [ClusterEvent(index: context.index, action: .created, object: .config(config))]

        case .removeConfig(let id):
            let config = try existing(configTable, .config, id)
            guard effects == .apply else { return [] }
            configTable[id] = nil
            configIDsByName[config.spec.name] = nil
            return [ClusterEvent(index: context.index, action: .removed, object: .config(config))]

        case .createNetwork(let id, let spec):
            if networkTable[id] != nil { throw .alreadyExists(kind: .network, id: id) }
            try Self.validate(name: spec.name, field: "network name")
            guard Self.isValidSubnet(spec.subnet) else {
                throw .invalidSpec(field: "subnet", reason: "'\(spec.subnet)' is not an IPv4 CIDR like 10.10.0.0/24")
            }
            if let other = networkTable.values.first(where: { $0.spec.name == spec.name }) { throw .nameInUse(kind: .network, name: spec.name, id: other.id) }
            let network = Network(meta: .new(id, context), spec: spec)
            guard effects == .apply else { return [] }
            networkTable[id] = network
            return [ClusterEvent(index: context.index, action: .created, object: .network(network))]

        case .removeNetwork(let id):
            let network = try existing(networkTable, .network, id)
            guard effects == .apply else { return [] }
            networkTable[id] = nil
            return [ClusterEvent(index: context.index, action: .removed, object: .network(network))]

        case .createRoute(let id, let spec):
            if routeTable[id] != nil { throw .alreadyExists(kind: .route, id: id) }
            try validate(spec, excluding: nil)
            let route = Route(meta: .new(id, context), spec: spec)
            guard effects == .apply else { return [] }
            routeTable[id] = route
            return [ClusterEvent(index: context.index, action: .created, object: .route(route))]

        case .updateRoute(let id, let expectedVersion, let spec):
            var route = try existing(routeTable, .route, id)
            try Self.check(expectedVersion, route.meta, .route)
            try validate(spec, excluding: id)
            route.spec = spec
            route.meta.touch(context)
            guard effects == .apply else { return [] }
            routeTable[id] = route
            return [ClusterEvent(index: context.index, action: .updated, object: .route(route))]

        case .removeRoute(let id):
            let route = try existing(routeTable, .route, id)
            guard effects == .apply else { return [] }
            routeTable[id] = nil
            return [ClusterEvent(index: context.index, action: .removed, object: .route(route))]

        case .batch(let commands):
            var events: [ClusterEvent] = []
            for command in commands { events += try applyOne(command, context) }
            return events
        }
    }

    private func existing<Object>(_ table: [ObjectID: Object], _ kind: ObjectKind, _ id: ObjectID) throws(ClusterStateError) -> Object {
        guard let object = table[id] else { throw .notFound(kind: kind, id: id) }
        return object
    }

    private static func check(_ expectedVersion: UInt64, _ meta: ObjectMeta, _ kind: ObjectKind) throws(ClusterStateError) {
        if expectedVersion != meta.version {
            throw .versionConflict(kind: kind, id: meta.id, expected: expectedVersion, actual: meta.version)
        }
    }
}

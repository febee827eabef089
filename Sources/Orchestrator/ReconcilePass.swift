import ClusterState

/// One run of ``Orchestrator/reconcile(_:now:idGenerator:)``.
struct ReconcilePass<Generator: RandomNumberGenerator> {
    let state: ClusterState
    let now: Int64
    let retention: Int
    var generator: Generator
    var result = Reconciliation()
    let facts: TaskFacts
    let nodes: [Node]
    /// ``ServicesPlantedBug/orchestratorKeepsReplacedTask``.
    let keepsReplacedTasks: Bool

    init(state: ClusterState, now: Int64, retention: Int, generator: Generator, keepsReplacedTasks: Bool = false) {
        self.state = state
        self.now = now
        self.retention = retention
        self.generator = generator
        self.keepsReplacedTasks = keepsReplacedTasks
        nodes = state.nodes
        var byID: [ObjectID: Node] = [:]
        for node in nodes { byID[node.id] = node }
        facts = TaskFacts(nodes: byID)
    }

    /// Reconciles every service (`only` nil) or the services `only` names,
    /// live or removed. Either way in the same order — live services by id,
    /// then removed services' tasks by service id, each service's tasks by
    /// id — so a pass over some services proposes exactly the commands a
    /// full pass would propose for them.
    mutating func run(only: Set<ObjectID>? = nil) {
        guard let only else {
            var tasksByService: [ObjectID: [ServiceTask]] = [:]
            for task in state.tasks { tasksByService[task.serviceID, default: []].append(task) }
            for service in state.services {
                let tasks = tasksByService.removeValue(forKey: service.id) ?? []
                reconcile(service, tasks: tasks)
            }
            // What is left belongs to removed services (whose tasks ClusterState already set to shut down).
            for serviceID in tasksByService.keys.sorted() {
                reap(tasksOfRemovedService: tasksByService[serviceID]!)
            }
            return
        }
        var removed: [ObjectID] = []
        for serviceID in only.sorted() {
            guard let service = state.service(serviceID) else {
                removed.append(serviceID)
                continue
            }
            reconcile(service, tasks: state.tasks(ofService: serviceID).sorted { $0.id < $1.id })
        }
        for serviceID in removed {
            let tasks = state.tasks(ofService: serviceID).sorted { $0.id < $1.id }
            if !tasks.isEmpty { reap(tasksOfRemovedService: tasks) }
        }
    }

    // MARK: Services

    private mutating func reconcile(_ service: Service, tasks: [ServiceTask]) {
        var removals: [ObjectID] = []
        switch service.spec.mode {
        case .replicated(let replicas):
            let slots = Self.groupBySlot(tasks)
            let rules = NodeRules(service.spec.task)
            let wanted = { (slot: Int) in replicas > 0 && (1...max(replicas, 1)).contains(slot) }
            let gate = RolloutGate(service: service, slots: slots.keys.sorted().map { .init(key: $0, tasks: slots[$0]!, wanted: wanted($0)) },
                                   facts: facts, rules: rules, now: now)
            adopt(gate, of: service)
            for slot in slots.keys.sorted() {
                var plan = planSlot(service, tasks: slots[slot]!, wanted: wanted(slot), isJob: false, rules: rules, update: gate.update(for: slot))
                if case .create = plan.outcome { emit(&plan, service: service, slot: slot, nodeID: nil) }
                finish(plan, of: service, removals: &removals)
            }
            let missing = (replicas > 0 ? Array(1...replicas) : []).filter { slots[$0] == nil }
            createFresh(service, slots: missing)

        case .replicatedJob(let completions, let maxConcurrent):
            let slots = Self.groupBySlot(tasks)
            let rules = NodeRules(service.spec.task)
            var plans: [(slot: Int, plan: SlotPlan)] = []
            var inProgress = 0
            for slot in slots.keys.sorted() {
                let plan = planSlot(service, tasks: slots[slot]!, wanted: completions > 0 && (1...max(completions, 1)).contains(slot),
                                    isJob: true, rules: rules)
                switch plan.outcome {
                case .occupied, .stopping, .waiting: inProgress += 1
                default: break
                }
                plans.append((slot, plan))
            }
            for (slot, var plan) in plans {
                if case .create = plan.outcome {
                    if inProgress < maxConcurrent {
                        inProgress += 1
                        emit(&plan, service: service, slot: slot, nodeID: nil)
                    } else {
                        plan.outcome = .idle
                        // Lost tasks are still stopped, without a replacement for now.
                    }
                }
                finish(plan, of: service, removals: &removals)
            }
            let fresh = (completions > 0 ? Array(1...completions) : []).filter { slots[$0] == nil }
            createFresh(service, slots: Array(fresh.prefix(max(0, maxConcurrent - inProgress))))

        case .global, .globalJob:
            let isJob = service.spec.mode == .globalJob
            let rules = NodeRules(service.spec.task)
            var byNode: [ObjectID: [ServiceTask]] = [:]
            for task in tasks {
                guard task.slot == 0, let nodeID = task.nodeID else {
                    // Left over from another mode: stop it.
                    let plan = planSlot(service, tasks: [task], wanted: false, isJob: isJob, rules: rules)
                    finish(plan, of: service, removals: &removals)
                    continue
                }
                byNode[nodeID, default: []].append(task)
            }
            var fresh: [ObjectID] = []
            for node in nodes where byNode[node.id] == nil && rules.mayStart(on: node) { fresh.append(node.id) }
            let nodeSlots = byNode.keys.sorted().map { nodeID in
                RolloutGate<ObjectID>.Slot(key: nodeID, tasks: byNode[nodeID]!.sorted(by: TaskFacts.creationOrder), wanted: rules.mayKeep(on: facts.nodes[nodeID]))
            }
            // Global jobs run again on a change rather than roll.
            let gate: RolloutGate<ObjectID>? = isJob ? nil : RolloutGate(service: service, slots: nodeSlots, facts: facts, rules: rules, now: now)
            if let gate { adopt(gate, of: service) }
            for slot in nodeSlots {
                let nodeID = slot.key
                let node = facts.nodes[nodeID]
                let slotTasks = slot.tasks
                var plan = planSlot(service, tasks: slotTasks, wanted: slot.wanted, isJob: isJob, rules: rules,
                                    update: gate?.update(for: nodeID) ?? .init())
                if node == nil {
                    // The node left the cluster (its tasks were orphaned): no history to keep for it.
                    plan.expired = slotTasks.filter { $0.status.state.isTerminal }.map(\.id)
                }
                if case .create = plan.outcome {
                    if let node, rules.mayStart(on: node) {
                        emit(&plan, service: service, slot: 0, nodeID: nodeID)
                    } else {
                        plan.outcome = .idle
                    }
                }
                finish(plan, of: service, removals: &removals)
            }
            if !fresh.isEmpty {
                var newTasks: [ClusterCommand.NewTask] = []
                for nodeID in fresh { newTasks.append(.init(id: newID(), serviceID: service.id, slot: 0, nodeID: nodeID)) }
                result.commands.append(.createTasks(newTasks))
            }
        }
        if !removals.isEmpty { result.commands.append(.removeTasks(ids: removals.sorted())) }
    }

    /// Takes a rollout's status commands and wake-up into the result.
    private mutating func adopt<Key>(_ gate: RolloutGate<Key>, of service: Service) {
        result.commands.append(contentsOf: gate.commands)
        if let time = gate.wakeUpMilliseconds { result.wakeUp(at: time, for: service.id) }
    }

    /// Tasks by slot, each slot's tasks oldest first, slots in order.
    private static func groupBySlot(_ tasks: [ServiceTask]) -> [Int: [ServiceTask]] {
        var slots: [Int: [ServiceTask]] = [:]
        for task in tasks { slots[task.slot, default: []].append(task) }
        for slot in slots.keys { slots[slot]!.sort(by: TaskFacts.creationOrder) }
        return slots
    }

    private mutating func newID() -> ObjectID { ObjectID.random(using: &generator) }

    /// Slots that never had a task.
    private mutating func createFresh(_ service: Service, slots: [Int]) {
        guard !slots.isEmpty else { return }
        var newTasks: [ClusterCommand.NewTask] = []
        for slot in slots { newTasks.append(.init(id: newID(), serviceID: service.id, slot: slot)) }
        result.commands.append(.createTasks(newTasks))
    }

    // MARK: Slots

    /// What to do with one slot (one node for global services).
    struct SlotPlan {
        enum Outcome: Equatable {
            /// A live task holds the slot.
            case occupied
            /// Waiting for a task asked to stop before replacing it.
            case stopping
            /// A job slot that completed.
            case done
            /// Not wanted, or the restart policy gave up, or no room to start now.
            case idle
            /// The restart delay ends at the given time.
            case waiting(until: Int64)
            /// Wants a new task with this restart history.
            case create(restartHistory: [Int64])
        }
        var outcome: Outcome = .idle
        /// Tasks to ask to stop (agents stop them; they stay as history).
        var stops: [ServiceTask] = []
        /// Lost tasks to ask to stop: batched with the replacement when there is one.
        var lostStops: [ServiceTask] = []
        /// Never-assigned tasks to stop and remove in one step.
        var cancels: [ServiceTask] = []
        /// Never-assigned tasks already desired shut down: remove.
        var removals: [ObjectID] = []
        /// Terminal tasks beyond the retention.
        var expired: [ObjectID] = []
        /// The command creating the replacement, when there is one.
        var creation: ClusterCommand?
        /// Ended tasks still desired running, set to shutdown with the replacement (or when the slot is not wanted or held by a live task).
        var retired: [ServiceTask] = []
        var wanted = true
    }

    /// Decides one slot. `tasks` are the slot's tasks, oldest first.
    private func planSlot(_ service: Service, tasks: [ServiceTask], wanted: Bool, isJob: Bool, rules: NodeRules,
                          update: SlotUpdate = SlotUpdate()) -> SlotPlan {
        var plan = SlotPlan()
        // The newest current task that may stay keeps the slot; every other live task is asked to stop.
        var keeper: ServiceTask?
        let outdatedAndPlaced = { (task: ServiceTask) in
            facts.isActive(task) && TaskFacts.isDesiredRunning(task) && !TaskFacts.isCurrent(task, of: service) && !facts.isUnassigned(task)
                && rules.mayKeep(on: facts.nodes[task.nodeID!])
        }
        // Outdated tasks that keep running for now: the rollout has not reached
        // the slot, or (start-first) its new task does not run yet.
        var overlapping: Set<ObjectID> = []
        if wanted {
            keeper = tasks.last { task in
                facts.isActive(task) && TaskFacts.isDesiredRunning(task) && TaskFacts.isCurrent(task, of: service)
                    && (task.nodeID == nil || facts.isUnassigned(task) || rules.mayKeep(on: facts.nodes[task.nodeID!]))
            }
            if keeper == nil && update.hold {
                keeper = tasks.last(where: outdatedAndPlaced)
            } else if update.startFirst && keeper?.status.state != .running {
                overlapping = Set(tasks.filter(outdatedAndPlaced).map(\.id))
            }
        }
        if !isJob {
            // Ended tasks still desired running: retired (desired shutdown, as
            // `service ps` shows) once replaced, or at once when the slot goes.
            plan.retired = tasks.filter { $0.status.state.isTerminal && TaskFacts.isDesiredRunning($0) }
        }
        // The planted bug: a task that must move is neither stopped nor waited for.
        let forgotten = { (task: ServiceTask) in
            keepsReplacedTasks && wanted && facts.isActive(task) && TaskFacts.isDesiredRunning(task) && !facts.isUnassigned(task)
                && (!TaskFacts.isCurrent(task, of: service) || !rules.mayKeep(on: facts.nodes[task.nodeID!]))
        }
        for task in tasks where task.id != keeper?.id && !overlapping.contains(task.id) && !forgotten(task) {
            if facts.isUnassigned(task) && !task.status.state.isTerminal {
                if TaskFacts.isDesiredRunning(task) { plan.cancels.append(task) } else { plan.removals.append(task.id) }
            } else if TaskFacts.isDesiredRunning(task) && !task.status.state.isTerminal {
                if facts.isLost(task) { plan.lostStops.append(task) } else { plan.stops.append(task) }
            }
        }
        let terminal = tasks.filter { $0.status.state.isTerminal }
        if terminal.count > retention { plan.expired = terminal.prefix(terminal.count - retention).map(\.id) }

        if keeper != nil {
            plan.outcome = .occupied
            return plan
        }
        let stillStopping = tasks.contains { task in
            facts.isActive(task) && !facts.isUnassigned(task) && !overlapping.contains(task.id) && !forgotten(task)
        }
        if stillStopping {
            plan.outcome = .stopping
            return plan
        }
        if isJob && tasks.contains(where: { $0.status.state == .complete && TaskFacts.isCurrent($0, of: service) }) {
            plan.outcome = .done
            return plan
        }
        guard wanted else {
            plan.wanted = false
            return plan
        }
        plan.outcome = restartDecision(service, latest: tasks.last, isJob: isJob)
        return plan
    }

    /// Whether a wanted slot with no live task gets a new one, and when.
    private func restartDecision(_ service: Service, latest: ServiceTask?, isJob: Bool) -> SlotPlan.Outcome {
        guard let latest else { return .create(restartHistory: []) }
        // Replacements the orchestrator (or a user) asked for are not restarts.
        if !TaskFacts.isCurrent(latest, of: service) || !TaskFacts.isDesiredRunning(latest) { return .create(restartHistory: []) }
        if facts.isLost(latest) { return .create(restartHistory: latest.restartHistoryMilliseconds) }
        let policy = latest.template.restartPolicy
        let restarts: Bool
        switch (latest.status.state, policy.condition) {
        case (.complete, _) where isJob: return .idle
        case (.complete, .any): restarts = true
        case (.complete, _): restarts = false
        case (_, .none): restarts = false
        default: restarts = true
        }
        guard restarts else { return .idle }
        let endedAt = latest.status.timestampMilliseconds
        let window = policy.windowMilliseconds
        let earlier = latest.restartHistoryMilliseconds.filter { window == 0 || $0 > endedAt - window }
        if policy.maxAttempts > 0 && earlier.count >= policy.maxAttempts { return .idle }
        let readyAt = endedAt + policy.delayMilliseconds
        if now < readyAt { return .waiting(until: readyAt) }
        let history = policy.maxAttempts > 0 ? Array((earlier + [endedAt]).suffix(policy.maxAttempts)) : []
        return .create(restartHistory: history)
    }

    /// Builds the replacement for a slot whose plan is `.create`.
    private mutating func emit(_ plan: inout SlotPlan, service: Service, slot: Int, nodeID: ObjectID?) {
        guard case .create(let history) = plan.outcome else { return }
        let newTask = ClusterCommand.NewTask(id: newID(), serviceID: service.id, slot: slot, nodeID: nodeID, restartHistoryMilliseconds: history)
        plan.creation = .createTasks([newTask])
    }

    /// Appends a slot's commands. A replacement goes in one batch with the
    /// stops of the tasks it replaces (lost ones, never-assigned ones), so
    /// that if any stop is refused (the scheduler assigned the task
    /// meanwhile), nothing is created and the slot never has two tasks
    /// desired running. (A plan with a replacement has no other stops: those
    /// wait for the task to stop first.)
    private mutating func finish(_ plan: SlotPlan, of service: Service, removals: inout [ObjectID]) {
        for task in plan.stops { result.commands.append(stop(task)) }
        var steps: [ClusterCommand] = plan.lostStops.map(stop)
        for task in plan.cancels { steps += [stop(task), .removeTasks(ids: [task.id])] }
        if let creation = plan.creation {
            steps += plan.retired.map(stop)
            result.commands.append(steps.isEmpty ? creation : .batch(steps + [creation]))
        } else {
            // No replacement will come for them: their slot is gone, or a live task holds it.
            if !plan.wanted || plan.outcome == .occupied { result.commands.append(contentsOf: plan.retired.map(stop)) }
            result.commands.append(contentsOf: plan.lostStops.map(stop))
            for task in plan.cancels { result.commands.append(.batch([stop(task), .removeTasks(ids: [task.id])])) }
        }
        if case .waiting(let time) = plan.outcome { result.wakeUp(at: time, for: service.id) }
        removals.append(contentsOf: plan.removals)
        removals.append(contentsOf: plan.expired)
    }

    private func stop(_ task: ServiceTask) -> ClusterCommand {
        .setTaskDesiredState(id: task.id, expectedVersion: task.meta.version, desiredState: .shutdown)
    }

    // MARK: Removed services

    /// Tasks of a removed service go once nothing runs them: stopped ones,
    /// never-assigned ones, and lost ones (an agent that comes back stops
    /// what is no longer assigned to it).
    private mutating func reap(tasksOfRemovedService tasks: [ServiceTask]) {
        var removals: [ObjectID] = []
        for task in tasks {
            if task.status.state.isTerminal || facts.isUnassigned(task) || facts.isLost(task) {
                removals.append(task.id)
            } else if TaskFacts.isDesiredRunning(task) {
                result.commands.append(stop(task))
            }
        }
        if !removals.isEmpty { result.commands.append(.removeTasks(ids: removals.sorted())) }
    }
}

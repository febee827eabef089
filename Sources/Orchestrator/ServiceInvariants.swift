import ClusterState

/// One broken invariant: which, and the objects that broke it.
public struct InvariantViolation: Sendable, Equatable, CustomStringConvertible {
    public var invariant: String
    public var detail: String

    public init(invariant: String, detail: String) {
        self.invariant = invariant
        self.detail = detail
    }

    public var description: String { "\(invariant): \(detail)" }
}

/// The invariants of services and tasks, each a named function, so that the
/// unit tests and the simulator check the same thing. Safety invariants hold
/// after every applied command (``checkSafety(previous:current:)`` runs them
/// all); convergence invariants hold once faults have healed and the
/// orchestrator, scheduler and agents have had time to act
/// (``checkConverged(_:)``). Each returns its violations, empty when it holds.
public enum ServiceInvariants {
    /// A slot: `(service, slot)` for replicated services and jobs,
    /// `(service, node)` for global ones.
    struct SlotKey: Hashable, Comparable, CustomStringConvertible {
        var serviceID: ObjectID
        var slot: Int
        var nodeID: ObjectID?

        init(_ task: ServiceTask) {
            serviceID = task.serviceID
            slot = task.slot
            nodeID = task.slot == 0 ? task.nodeID : nil
        }

        static func < (lhs: SlotKey, rhs: SlotKey) -> Bool {
            (lhs.serviceID, lhs.slot, lhs.nodeID?.rawValue ?? "") < (rhs.serviceID, rhs.slot, rhs.nodeID?.rawValue ?? "")
        }

        var description: String { nodeID.map { "service \(serviceID) on node \($0)" } ?? "service \(serviceID) slot \(slot)" }
    }

    // MARK: Safety

    /// All safety invariants between two consecutive states.
    public static func checkSafety(previous: ClusterState, current: ClusterState) -> [InvariantViolation] {
        noTaskAssignedToTwoNodes(previous: previous, current: current)
            + taskStateOnlyMovesForward(previous: previous, current: current)
            + assignedTasksNameANode(current)
            + atMostOneDesiredRunningTaskPerSlot(current)
    }

    /// Once a task has a node it keeps it: a task never runs on two nodes.
    public static func noTaskAssignedToTwoNodes(previous: ClusterState, current: ClusterState) -> [InvariantViolation] {
        var violations: [InvariantViolation] = []
        for before in previous.tasks {
            guard let node = before.nodeID, let after = current.task(before.id), after.nodeID != node else { continue }
            violations.append(.init(invariant: "noTaskAssignedToTwoNodes",
                                    detail: "task \(before.id) moved from node \(node) to \(after.nodeID.map(\.rawValue) ?? "none")"))
        }
        return violations
    }

    /// Observed task state only moves forward, and desired state too.
    public static func taskStateOnlyMovesForward(previous: ClusterState, current: ClusterState) -> [InvariantViolation] {
        var violations: [InvariantViolation] = []
        for before in previous.tasks {
            guard let after = current.task(before.id) else { continue }
            if after.status.state < before.status.state || (before.status.state.isTerminal && after.status.state != before.status.state) {
                violations.append(.init(invariant: "taskStateOnlyMovesForward",
                                        detail: "task \(before.id) went from \(before.status.state) to \(after.status.state)"))
            }
            if after.desiredState < before.desiredState {
                violations.append(.init(invariant: "taskStateOnlyMovesForward",
                                        detail: "task \(before.id) desired state went from \(before.desiredState) to \(after.desiredState)"))
            }
        }
        return violations
    }

    /// A task past pending names the node it was assigned to.
    public static func assignedTasksNameANode(_ state: ClusterState) -> [InvariantViolation] {
        state.tasks.filter { $0.status.state > .pending && $0.nodeID == nil }.map {
            InvariantViolation(invariant: "assignedTasksNameANode", detail: "task \($0.id) is \($0.status.state) without a node")
        }
    }

    /// Each slot has at most one task that is desired running and not yet
    /// terminal: the orchestrator replaces a task only after asking the old
    /// one to stop, in the same atomic command when it does not wait. A
    /// start-first rollout is the one exception: the slot may then hold one
    /// task of the service's current template beside one older task.
    public static func atMostOneDesiredRunningTaskPerSlot(_ state: ClusterState) -> [InvariantViolation] {
        let live = { (task: ServiceTask) in task.desiredState <= .running && !task.status.state.isTerminal }
        return duplicates(in: state, invariant: "atMostOneDesiredRunningTaskPerSlot", counting: live) { tasks in
            guard tasks.count == 2, let service = state.service(tasks[0].serviceID) else { return false }
            let config = service.updateStatus?.isRollback == true ? service.spec.rollback : service.spec.update
            let current = tasks.filter { TaskFacts.isCurrent($0, of: service) }.count
            return config.order == .startFirst && current == 1
        }
    }

    // MARK: Convergence

    /// All convergence invariants.
    public static func checkConverged(_ state: ClusterState) -> [InvariantViolation] {
        atMostOneNonTerminalTaskPerSlot(state) + placementsSatisfyConstraints(state) + servicesConverged(state)
    }

    /// Each slot has at most one task not yet terminal, leaving out tasks on
    /// down nodes (they cannot report that they stopped). Holds once agents
    /// have stopped what they were asked to stop.
    public static func atMostOneNonTerminalTaskPerSlot(_ state: ClusterState) -> [InvariantViolation] {
        duplicates(in: state, invariant: "atMostOneNonTerminalTaskPerSlot") { task in
            guard !task.status.state.isTerminal else { return false }
            guard let nodeID = task.nodeID, task.status.state > .pending else { return true }
            return state.node(nodeID).map { $0.status.state != .down } ?? false
        }
    }

    /// Every task desired running on a node is on a node its constraints allow.
    public static func placementsSatisfyConstraints(_ state: ClusterState) -> [InvariantViolation] {
        var violations: [InvariantViolation] = []
        for task in state.tasks where task.desiredState <= .running && !task.status.state.isTerminal && task.status.state > .pending {
            guard let nodeID = task.nodeID, let node = state.node(nodeID) else { continue }
            if !NodeRules(task.template).allows(node) {
                violations.append(.init(invariant: "placementsSatisfyConstraints",
                                        detail: "task \(task.id) runs on node \(nodeID), which its placement rules exclude"))
            }
        }
        return violations
    }

    /// Every service has its desired tasks: replicated services one running
    /// task of the current spec in each slot 1...replicas and nothing live
    /// above; global services one on each node that is ready, active and
    /// allowed (and none where not allowed; a paused node may keep its
    /// task); jobs their completions. (A slot whose restart policy gave
    /// up counts as not converged: the simulator runs with policies that
    /// always restart.)
    public static func servicesConverged(_ state: ClusterState) -> [InvariantViolation] {
        var violations: [InvariantViolation] = []
        var tasksByService: [ObjectID: [ServiceTask]] = [:]
        for task in state.tasks { tasksByService[task.serviceID, default: []].append(task) }
        func fail(_ service: Service, _ detail: String) {
            violations.append(.init(invariant: "servicesConverged", detail: "service \(service.spec.name) (\(service.id)): \(detail)"))
        }
        for service in state.services {
            let tasks = tasksByService[service.id] ?? []
            let running = tasks.filter { task in
                task.status.state == .running && task.desiredState <= .running && TaskFacts.isCurrent(task, of: service)
                    && task.nodeID.flatMap(state.node).map { $0.status.state == .ready } == true
            }
            let completed = tasks.filter { $0.status.state == .complete && TaskFacts.isCurrent($0, of: service) }
            let live = tasks.filter { !$0.status.state.isTerminal && $0.desiredState <= .running }
            let rules = NodeRules(service.spec.task)
            let eligible = state.nodes.filter { rules.mayStart(on: $0) }.map(\.id)
            switch service.spec.mode {
            case .replicated(let replicas):
                let slots = running.map(\.slot).sorted()
                if slots != Array(1...max(replicas, 1)).prefix(replicas).map({ $0 }) {
                    fail(service, "running slots \(slots), want 1...\(replicas)")
                }
                if live.count != running.count { fail(service, "\(live.count - running.count) tasks desired running are not running") }
            case .global:
                // Every eligible node runs one; a paused node may keep its task.
                let nodes = running.compactMap(\.nodeID).sorted()
                let missing = eligible.filter { !nodes.contains($0) }
                let misplaced = nodes.filter { !rules.mayKeep(on: state.node($0)) }
                if !missing.isEmpty || !misplaced.isEmpty || Set(nodes).count != nodes.count {
                    fail(service, "running on \(nodes.map(\.rawValue)), want \(eligible.map(\.rawValue)) (paused nodes may keep theirs)")
                }
                if live.count != running.count { fail(service, "\(live.count - running.count) tasks desired running are not running") }
            case .replicatedJob(let completions, _):
                let slots = Set(completed.map(\.slot)).sorted()
                if slots != Array(1...max(completions, 1)).prefix(completions).map({ $0 }) {
                    fail(service, "completed slots \(slots), want 1...\(completions)")
                }
                if !live.isEmpty { fail(service, "\(live.count) tasks still live after the job completed") }
            case .globalJob:
                let nodes = Set(completed.compactMap(\.nodeID))
                let missing = eligible.filter { !nodes.contains($0) }
                if !missing.isEmpty { fail(service, "no completion on \(missing.map(\.rawValue))") }
                if !live.isEmpty { fail(service, "\(live.count) tasks still live after the job completed") }
            }
        }
        return violations
    }

    /// Slots with more than one task `counting` accepts, unless `allowed` excuses the group.
    private static func duplicates(in state: ClusterState, invariant: String, counting: (ServiceTask) -> Bool,
                                   allowed: ([ServiceTask]) -> Bool = { _ in false }) -> [InvariantViolation] {
        var bySlot: [SlotKey: [ServiceTask]] = [:]
        for task in state.tasks where counting(task) { bySlot[SlotKey(task), default: []].append(task) }
        return bySlot.filter { $0.value.count > 1 && !allowed($0.value) }.sorted { $0.key < $1.key }.map {
            InvariantViolation(invariant: invariant, detail: "\($0.key) has \($0.value.count) tasks: \($0.value.map(\.id.rawValue).joined(separator: ", "))")
        }
    }
}

import ClusterState
import Orchestrator
import Scheduler

/// The invariants of `shoal-sim services`, each a named function. The
/// state-level ones are ``ServiceInvariants`` (Sources/Orchestrator), which
/// the unit tests call too; these add what only the simulator sees: the
/// fake runtime's containers (the ground truth of what runs where) and the
/// operator's acknowledged writes.
struct ServicesInvariants {
    struct Slot: Hashable {
        var serviceID: ObjectID
        var slot: Int
    }

    /// The container running for each replicated or job slot, by the node
    /// running it. Looked up only, never iterated.
    private var running: [Slot: (taskID: ObjectID, nodeID: ObjectID)] = [:]
    /// Every spec the operator proposed per service, in order.
    private(set) var proposedSpecs: [ObjectID: [Service.Spec]] = [:]
    /// The newest acknowledged create or update per service: its version
    /// (the index it applied at), spec, and position in ``proposedSpecs``.
    private(set) var acknowledged: [ObjectID: (version: UInt64, spec: Service.Spec, position: Int)] = [:]

    // MARK: What runs

    /// A task is never running on two nodes for the same slot at the same
    /// time (nor twice on one): checked as each container starts, against
    /// the containers running then. Global services (slot 0) have one slot
    /// per node by construction.
    ///
    /// The one exception is Swarm's: a node the cluster has marked down
    /// (`isDown`, from the leader's state) counts as dead, and its slots are
    /// started elsewhere although a worker cut off from every manager for a
    /// heartbeat deadline may still run them; agents keep running tasks
    /// while no manager is reachable. Returns true when that exception
    /// applied, for the coverage count.
    @discardableResult
    mutating func noSlotRunningOnTwoNodes(starting task: ServiceTask, on nodeID: ObjectID, isDown: (ObjectID) -> Bool,
                                          time: UInt64) throws(InvariantViolation) -> Bool {
        guard task.slot > 0 else { return false }
        let slot = Slot(serviceID: task.serviceID, slot: task.slot)
        var excused = false
        if let other = running[slot] {
            guard other.nodeID != nodeID && isDown(other.nodeID) else {
                throw InvariantViolation(
                    invariant: "noSlotRunningOnTwoNodes",
                    details: "task \(task.id) starts for service \(task.serviceID) slot \(task.slot) on node \(nodeID) while task \(other.taskID) of that slot runs on node \(other.nodeID)",
                    time: time)
            }
            excused = true
        }
        running[slot] = (task.id, nodeID)
        return excused
    }

    /// A container of `task` stopped, exited or died with its host.
    mutating func containerGone(_ task: ServiceTask) {
        guard task.slot > 0 else { return }
        let slot = Slot(serviceID: task.serviceID, slot: task.slot)
        if running[slot]?.taskID == task.id { running[slot] = nil }
    }

    /// Nothing placed violates a constraint: a container starts only on a
    /// node its task's constraints allow (checked against the node's labels
    /// as the cluster records them).
    func placementSatisfiesConstraints(_ task: ServiceTask, on node: Node?, nodeID: ObjectID, time: UInt64) throws(InvariantViolation) {
        guard let node else { return }
        let constraints: [PlacementConstraint]
        do {
            constraints = try PlacementConstraint.parse(all: task.template.placement.constraints)
        } catch {
            return  // the scheduler never places a task whose rules do not parse
        }
        if let broken = constraints.first(where: { !$0.isSatisfied(by: node) }) {
            throw InvariantViolation(
                invariant: "placementSatisfiesConstraints",
                details: "task \(task.id) of service \(task.serviceID) runs on node \(nodeID) (labels \(node.spec.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))), which breaks its constraint \(broken.text)",
                time: time)
        }
    }

    // MARK: State

    /// The state-level safety invariants of ``ServiceInvariants`` between
    /// two states of the leader (task state only moves forward, a task keeps
    /// its node, one live task per slot) and placements against constraints.
    static func stateStaysSafe(previous: ClusterState, current: ClusterState, time: UInt64) throws(InvariantViolation) {
        let violations = ServiceInvariants.checkSafety(previous: previous, current: current)
            + ServiceInvariants.placementsSatisfyConstraints(current)
        if let first = violations.first {
            throw InvariantViolation(invariant: first.invariant, details: first.detail + (violations.count > 1 ? " (and \(violations.count - 1) more)" : ""),
                                     time: time)
        }
    }

    /// Every service converged to its desired tasks (``ServiceInvariants/checkConverged(_:)``)
    /// and the containers running are exactly the tasks the state says run.
    /// Returns what is not there yet, empty when converged.
    static func servicesConverged(_ state: ClusterState, containers: [(nodeID: ObjectID, taskID: ObjectID)]) -> [String] {
        var problems = ServiceInvariants.checkConverged(state).map(\.description)
        var runningTasks = Set<ObjectID>()
        for task in state.tasks where task.status.state == .running && task.desiredState <= .running {
            runningTasks.insert(task.id)
        }
        var seen = Set<ObjectID>()
        for container in containers {
            seen.insert(container.taskID)
            guard let task = state.task(container.taskID), task.nodeID == container.nodeID, runningTasks.contains(task.id) else {
                problems.append("node \(container.nodeID) runs a container of task \(container.taskID), which the state does not run there")
                continue
            }
        }
        for id in runningTasks.sorted() where !seen.contains(id) {
            problems.append("task \(id) is running in the state but no container runs it")
        }
        return problems
    }

    /// Every service converges within `boundMs` of the faults healing.
    static func servicesConvergeAfterHealing(problems: [String], healedAt: UInt64, now: UInt64, boundMs: UInt64) throws(InvariantViolation) {
        guard !problems.isEmpty, now > healedAt + boundMs else { return }
        throw InvariantViolation(
            invariant: "servicesConvergeAfterHealing",
            details: "\(now - healedAt) ms after healing: \(problems.prefix(5).joined(separator: "; "))\(problems.count > 5 ? " (and \(problems.count - 5) more)" : "")",
            time: now)
    }

    // MARK: Specs

    mutating func proposed(_ spec: Service.Spec, for serviceID: ObjectID) -> Int {
        proposedSpecs[serviceID, default: []].append(spec)
        return proposedSpecs[serviceID]!.count - 1
    }

    mutating func acknowledge(_ serviceID: ObjectID, version: UInt64, position: Int) {
        acknowledged[serviceID] = (version, proposedSpecs[serviceID]![position], position)
    }

    /// No service spec is lost: every acknowledged create or update is in
    /// `state` (applied through `appliedIndex`), or a spec proposed after it.
    func noServiceSpecLost(_ state: ClusterState, member: UInt64, time: UInt64) throws(InvariantViolation) {
        for serviceID in acknowledged.keys.sorted() {
            let acked = acknowledged[serviceID]!
            guard state.appliedIndex >= acked.version else { continue }
            guard let service = state.service(serviceID) else {
                throw InvariantViolation(invariant: "noServiceSpecLost",
                                         details: "manager \(member) applied through \(state.appliedIndex) but has no service \(serviceID), acknowledged at \(acked.version)", time: time)
            }
            let later = proposedSpecs[serviceID]![(acked.position + 1)...]
            if service.meta.version < acked.version || (service.spec != acked.spec && !later.contains(service.spec)) {
                throw InvariantViolation(
                    invariant: "noServiceSpecLost",
                    details: "manager \(member): service \(serviceID) is at version \(service.meta.version) with image \(service.spec.task.image) and mode \(service.spec.mode), but the update acknowledged at \(acked.version) set image \(acked.spec.task.image) and mode \(acked.spec.mode)",
                    time: time)
            }
        }
    }
}

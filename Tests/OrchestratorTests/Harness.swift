import struct Raft.SeededGenerator
import ClusterState
import Orchestrator
import Scheduler


/// A cluster driven as a manager drives it: commands applied at consecutive
/// log indexes with the clock `time`, the orchestrator and scheduler run on
/// demand, and a fake agent that obeys desired state.
struct Harness {
    var state = ClusterState()
    var index: UInt64 = 0
    var time: Int64 = 1_000
    var ids = SeededGenerator(seed: 42)
    var orchestrator = Orchestrator()
    /// Every command the orchestrator proposed that the state refused.
    var refused = 0
    /// Safety invariants are checked after every applied command.
    var violations: [InvariantViolation] = []
    /// The change events of the commands applied since ``takeEvents()`` (for a ``LeaderCycle``).
    var events: [ClusterEvent] = []

    static let gibibyte: Int64 = 1 << 30

    @discardableResult
    mutating func apply(_ command: ClusterCommand) -> Bool {
        index += 1
        let previous = state
        do {
            events += try state.apply(command, context: ApplyContext(index: index, timeMilliseconds: time))
        } catch {
            refused += 1
            return false
        }
        violations += ServiceInvariants.checkSafety(previous: previous, current: state)
        return true
    }

    mutating func takeEvents() -> [ClusterEvent] {
        defer { events = [] }
        return events
    }

    mutating func mustApply(_ command: ClusterCommand) {
        precondition(apply(command), "fixture command \(command) was refused")
    }

    mutating func addNode(_ id: ObjectID, availability: Node.Availability = .active, labels: [String: String] = [:], memoryGiB: Int64 = 64) {
        mustApply(.createNode(id: id, spec: Node.Spec(role: .worker, availability: availability, labels: labels),
                              status: Node.Status(state: .ready, hostname: "host-\(id)",
                                                  resources: Node.Resources(nanoCPUs: 8_000_000_000, memoryBytes: memoryGiB * Self.gibibyte)),
                              managerStatus: nil))
    }

    mutating func setNode(_ id: ObjectID, state nodeState: Node.State) {
        var status = state.node(id)!.status
        status.state = nodeState
        mustApply(.updateNodeStatus(id: id, status: status))
    }

    mutating func setNode(_ id: ObjectID, availability: Node.Availability? = nil, labels: [String: String]? = nil) {
        let node = state.node(id)!
        var spec = node.spec
        if let availability { spec.availability = availability }
        if let labels { spec.labels = labels }
        mustApply(.updateNodeSpec(id: id, expectedVersion: node.meta.version, spec: spec))
    }

    static func spec(_ name: String, mode: Service.Mode, configure: (inout TaskTemplate) -> Void = { _ in }) -> Service.Spec {
        var template = TaskTemplate(image: "busybox:latest")
        template.restartPolicy = .init(condition: .any, delayMilliseconds: 0)
        configure(&template)
        return Service.Spec(name: name, mode: mode, task: template)
    }

    mutating func createService(_ id: ObjectID, mode: Service.Mode, configure: (inout TaskTemplate) -> Void = { _ in }) {
        mustApply(.createService(id: id, spec: Self.spec(id.rawValue, mode: mode, configure: configure)))
    }

    mutating func updateService(_ id: ObjectID, force: Bool = false, change: (inout Service.Spec) -> Void = { _ in }) {
        let service = state.service(id)!
        var spec = service.spec
        change(&spec)
        mustApply(.updateService(id: id, expectedVersion: service.meta.version, spec: spec, force: force))
    }

    /// Runs the orchestrator once and applies what it proposes.
    @discardableResult
    mutating func reconcile() -> Reconciliation {
        let reconciliation = orchestrator.reconcile(state, now: time, idGenerator: &ids)
        for command in reconciliation.commands { apply(command) }
        return reconciliation
    }

    /// Runs the scheduler once and applies its assignments.
    @discardableResult
    mutating func schedule() -> SchedulingDecision {
        let decision = Scheduler().schedule(state)
        for command in decision.commands { apply(command) }
        return decision
    }

    /// The fake agents: on every node that is not down, assigned tasks start
    /// running (or fail, if `fails` says so) and tasks asked to stop stop.
    mutating func runAgents(fails: (ServiceTask) -> Bool = { _ in false }) {
        for task in state.tasks where !task.status.state.isTerminal && task.status.state > .pending {
            guard let nodeID = task.nodeID, let node = state.node(nodeID), node.status.state != .down else { continue }
            if task.desiredState > .running {
                apply(.updateTaskStatus(id: task.id, status: .init(state: .shutdown, timestampMilliseconds: time, message: "stopped")))
            } else if task.status.state < .running {
                if fails(task) {
                    apply(.updateTaskStatus(id: task.id, status: .init(state: .failed, timestampMilliseconds: time, error: "exit 1", exitCode: 1)))
                } else {
                    apply(.updateTaskStatus(id: task.id, status: .init(state: .running, timestampMilliseconds: time)))
                }
            }
        }
    }

    /// The agent reports a task's end.
    mutating func end(_ taskID: ObjectID, _ endState: ServiceTask.State) {
        mustApply(.updateTaskStatus(id: taskID, status: .init(state: endState, timestampMilliseconds: time, exitCode: endState == .complete ? 0 : 1)))
    }

    /// Orchestrator, scheduler and agents in turn until nothing changes.
    mutating func settle(rounds: Int = 20, fails: (ServiceTask) -> Bool = { _ in false }) {
        for _ in 0..<rounds {
            let before = index
            reconcile()
            schedule()
            runAgents(fails: fails)
            if index == before { return }
        }
    }

    func tasks(of serviceID: ObjectID) -> [ServiceTask] { state.tasks(ofService: serviceID) }

    /// Slots with a running task desired running.
    func runningSlots(_ serviceID: ObjectID) -> [Int] {
        tasks(of: serviceID).filter { $0.status.state == .running && $0.desiredState == .running }.map(\.slot).sorted()
    }

    func runningNodes(_ serviceID: ObjectID) -> [ObjectID] {
        tasks(of: serviceID).filter { $0.status.state == .running && $0.desiredState == .running }.compactMap(\.nodeID).sorted()
    }

    /// The newest task of a slot.
    func latest(_ serviceID: ObjectID, slot: Int) -> ServiceTask? {
        tasks(of: serviceID).filter { $0.slot == slot }.max { ($0.meta.createdIndex, $0.id) < ($1.meta.createdIndex, $1.id) }
    }
}

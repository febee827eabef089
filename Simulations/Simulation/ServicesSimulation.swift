import ClusterState
import Orchestrator
import Raft
import Scheduler

/// `shoal-sim services`: a manager group and many workers in one process, on
/// simulated time, from one seed.
///
/// Managers are Raft members (the real core) that apply the committed log to
/// a real ``ClusterState``; the leader runs ``LeaderCycle`` (the Orchestrator
/// and Scheduler passes of the daemon's LeaderLoop), keeps heartbeat
/// deadlines with ``HeartbeatTracker`` and filters agents' reports with
/// ``DispatchRules``, as the daemon's Dispatcher does. Workers
/// (``SimulatedWorker``) open sessions, heartbeat, receive assignments, start
/// tasks on a fake runtime after a latency, crash some, and report status.
/// An operator creates the services (replicated with constraints and spread
/// preferences, global, a job) and updates, scales and drains while the
/// nemesis crashes and partitions managers and kills workers.
///
/// After the fault phase every fault heals and every service must converge
/// to its desired tasks within ``SimulationOptions/livenessBoundMs``. The
/// invariants of ``ServicesInvariants`` are checked as the run goes: the
/// fake runtime's containers against each other and the placement rules at
/// every start, the state-level ones of ``ServiceInvariants`` on the
/// leader's state every second, and no acknowledged spec lost.
public final class ServicesSimulation: SimulatedGroup {
    public let seed: UInt64
    public let options: SimulationOptions
    let plan: FaultPlan
    static let memberNoun = "manager"

    static let tickIntervalMs: UInt64 = 10
    static let electionTimeoutTicks = 10
    static let heartbeatPeriodMs: Int64 = 1_000
    static let statusFlushMs: UInt64 = 200
    static let callTimeoutMs: UInt64 = 500
    static let reconnectBackoffMs: ClosedRange<UInt64> = 20...200
    static let safetyCheckIntervalMs: UInt64 = 1_000
    static let convergenceCheckIntervalMs: UInt64 = 500
    static let operatorTimeoutMs: UInt64 = 2_000

    var networkRandom: SimulationRandom
    var nemesisRandom: SimulationRandom
    var workerRandom: SimulationRandom
    var operatorRandom: SimulationRandom
    var memberSeedRandom: SimulationRandom
    var network: SimulatedNetwork
    var queue = EventQueue<ServicesEvent>()
    var now: UInt64 = 0

    var members: [SimulatedMember] = []
    /// The shells of running members (nil while crashed), by member position.
    var managers: [SimulatedManager?] = []
    var workers: [SimulatedWorker] = []
    var workerByNode: [ObjectID: Int] = [:]
    var raftInvariants = RaftInvariants()
    var invariants = ServicesInvariants()
    var workload: ServicesWorkload

    var hasher = TraceHasher()
    var trace: [String] = []
    var statistics = SimulationStatistics()
    var eventCount = 0
    var inFaultPhase = true
    var healedAt: UInt64?
    var finished = false
    /// The state the last safety check read, to compare the next one with.
    var previousSafetyState: ClusterState?
    var operatorCall: OperatorCall?
    var nextOperatorSequence: UInt64 = 1

    public init(seed: UInt64, options: SimulationOptions) {
        precondition(SimulationOptions.allowedMemberCounts.contains(options.members), "members must be 3, 5 or 7")
        precondition(options.workers >= 1 && options.tasks >= 1, "a services run needs workers and tasks")
        self.seed = seed
        self.options = options
        var root = SimulationRandom(seed: seed)
        var planRandom = root.split()
        plan = FaultPlan.services(random: &planRandom, options: options)
        networkRandom = root.split()
        nemesisRandom = root.split()
        workerRandom = root.split()
        operatorRandom = root.split()
        memberSeedRandom = root.split()
        network = SimulatedNetwork(faults: plan.network)
        workload = ServicesWorkload(workers: options.workers, tasks: options.tasks)
    }

    /// Runs the seed to the end: a violation, or every service converged.
    public func run() -> SimulationResult { runLoop() }

    func unfinished() -> InvariantViolation {
        InvariantViolation(invariant: "servicesConvergeAfterHealing", details: "the event queue ran dry before the services converged", time: now)
    }

    func result(violation: InvariantViolation?) -> SimulationResult {
        makeResult(violation, history: [], clusterHistory: [])
    }

    // MARK: Set-up

    func start() throws(InvariantViolation) {
        record("seed \(seed): \(plan); \(options.members) managers, \(options.workers) workers, \(options.tasks) tasks")
        let founders = (1...UInt64(options.members)).map { NodeID($0) }
        for id in founders {
            var raftOptions = RaftOptions(id: id, seed: memberSeedRandom.next())
            raftOptions.electionTimeoutTicks = Self.electionTimeoutTicks
            raftOptions.heartbeatIntervalTicks = 1
            raftOptions.plantedBug = options.plantedBug
            let member = SimulatedMember(id: id, options: raftOptions, storage: MemoryRaftStorage())
            member.node = RaftNode.bootstrap(options: raftOptions, voters: founders)
            members.append(member)
            managers.append(makeShell())
            queue.schedule(.tick(id), at: memberSeedRandom.uniform(1...Self.tickIntervalMs))
            queue.schedule(.leaderCheck(id), at: memberSeedRandom.uniform(1...UInt64(LeaderCycle.checkIntervalMilliseconds)))
        }
        for member in members { try drain(member) }
        for index in 0..<options.workers {
            let worker = workload.makeWorker(index)
            workers.append(worker)
            workerByNode[worker.nodeID] = index
            queue.schedule(.workerConnect(worker: index, epoch: 0), at: workerRandom.uniform(0...1_000))
        }
        queue.schedule(.operatorStep, at: 100)
        queue.schedule(.nemesis, at: 500 + nemesisRandom.uniform(plan.nemesisIntervalMs))
        queue.schedule(.safetyCheck, at: Self.safetyCheckIntervalMs)
        if options.steps == nil { queue.schedule(.endFaults, at: options.durationMs) }
    }

    func makeShell() -> SimulatedManager {
        let cycle = LeaderCycle(orchestrator: Orchestrator(plantedBug: options.servicesPlantedBug),
                                scheduler: Scheduler(plantedBug: options.servicesPlantedBug))
        return SimulatedManager(cycle: cycle, heartbeatPeriodMilliseconds: Self.heartbeatPeriodMs, idSeed: memberSeedRandom.next())
    }

    func member(_ id: NodeID) -> SimulatedMember? {
        guard id >= 1 && id <= UInt64(members.count) else { return nil }
        return members[Int(id) - 1]
    }

    func shell(_ id: NodeID) -> SimulatedManager? {
        guard id >= 1 && id <= UInt64(managers.count) else { return nil }
        return managers[Int(id) - 1]
    }

    // MARK: Events

    func handle(_ event: ServicesEvent) throws(InvariantViolation) {
        switch event {
        case .tick(let id):
            guard let member = member(id) else { return }
            queue.schedule(.tick(id), at: now + Self.tickIntervalMs)
            guard member.isRunning else { return }
            member.node!.tick()
            try drain(member)
        case .deliver(let message):
            guard let member = member(message.to), member.isRunning, !network.isCut(from: message.from, to: message.to) else {
                statistics.messagesDropped += 1
                return
            }
            hasher.combine((message.from << 32) | message.to)
            member.node!.step(message)
            try drain(member)
        case .restart(let id):
            guard let member = member(id), !member.isRunning else { return }
            try restart(member)
        case .nemesis:
            guard inFaultPhase else { return }
            nemesis()
            queue.schedule(.nemesis, at: now + nemesisRandom.uniform(plan.nemesisIntervalMs))
        case .healPartition(let generation):
            healPartition(generation: generation)
        case .leaderCheck(let id):
            queue.schedule(.leaderCheck(id), at: now + UInt64(LeaderCycle.checkIntervalMilliseconds))
            guard let member = member(id), member.isRunning else { return }
            try leaderCheck(member)
        case .workerCall(let worker, let manager, let call):
            try managerReceives(call, from: worker, at: manager)
        case .forwardedCall(let worker, let via, let leader, let call):
            try leaderReceives(call, from: worker, via: via, at: leader)
        case .workerReceives(let worker, let message):
            try workerReceives(message, worker: workers[worker])
        case .workerConnect(let worker, let epoch):
            connect(workers[worker], epoch: epoch)
        case .workerHeartbeat(let worker, let epoch):
            sendHeartbeat(workers[worker], epoch: epoch)
        case .workerCallTimeout(let worker, let epoch, let sequence):
            callTimedOut(workers[worker], epoch: epoch, sequence: sequence)
        case .workerFlush(let worker, let epoch):
            flush(workers[worker], epoch: epoch)
        case .containerStarted(let worker, let taskID, let incarnation):
            try containerStarted(workers[worker], taskID: taskID, incarnation: incarnation)
        case .containerExited(let worker, let taskID, let incarnation, let exitCode):
            containerExited(workers[worker], taskID: taskID, incarnation: incarnation, exitCode: exitCode)
        case .containerStopped(let worker, let taskID, let incarnation):
            containerStopped(workers[worker], taskID: taskID, incarnation: incarnation)
        case .workerRestart(let worker):
            restartWorker(workers[worker])
        case .operatorStep:
            try operatorStep()
        case .operatorTimeout(let sequence):
            operatorTimedOut(sequence: sequence)
        case .endFaults:
            if inFaultPhase { try endFaults() }
        case .convergenceCheck:
            try checkConvergence()
        case .safetyCheck:
            try safetyCheck()
            queue.schedule(.safetyCheck, at: now + Self.safetyCheckIntervalMs)
        }
    }

    func send(_ message: Message) {
        statistics.messagesSent += 1
        let delays = network.deliveries(random: &networkRandom)
        if delays.isEmpty { statistics.messagesDropped += 1 }
        for delay in delays { queue.schedule(.deliver(message), at: now + delay) }
    }

    // MARK: The Ready loop (Sources/Raft/Ready.swift, in its order)

    func drain(_ member: SimulatedMember) throws(InvariantViolation) {
        while member.node?.hasReady == true {
            let ready = member.node!.ready()
            if let soft = ready.softState {
                try raftInvariants.electionSafety(member: member.id, role: soft.role, term: soft.term, time: now)
                if soft.role == .leader { record("manager \(member.id) is leader in term \(soft.term)") }
            }
            for message in ready.messagesBeforePersist { send(message) }
            do {
                try member.storage.save(ready)
            } catch {
                preconditionFailure("in-memory storage failed: \(error)")
            }
            for message in ready.messages { send(message) }
            var routed: [Int: (tasks: [ServiceTask], removed: [ObjectID])] = [:]
            for entry in ready.committedEntries {
                try apply(entry, on: member, routed: &routed)
            }
            member.node!.advance(ready)
            for worker in routed.keys.sorted() {
                let batch = routed[worker]!
                sendToWorker(workers[worker], .assignments(epoch: managers[Int(member.id) - 1]!.sessions[worker]!.epoch, full: false,
                                                           tasks: batch.tasks, removed: batch.removed))
            }
        }
    }

    private func apply(_ entry: Entry, on member: SimulatedMember, routed: inout [Int: (tasks: [ServiceTask], removed: [ObjectID])]) throws(InvariantViolation) {
        guard entry.index == member.appliedIndex + 1 else {
            if entry.index <= member.appliedIndex { return }
            throw InvariantViolation(invariant: "stateMachineSafety",
                                     details: "manager \(member.id) was handed index \(entry.index) after applying only through \(member.appliedIndex)", time: now)
        }
        var outcome: Result<[ClusterEvent], ClusterStateError> = .success([])
        if entry.kind == .normal && !entry.data.isEmpty {
            do {
                outcome = .success(try member.cluster.apply(entryData: entry.data, index: entry.index))
            } catch {
                outcome = .failure(error)
            }
        }
        member.appliedIndex = entry.index
        var digest = TraceHasher()
        digest.combine(member.clusterDigest)
        digest.combine(entry.index)
        if case .failure(let error) = outcome { digest.combine(Array(RaftSimulation.reason(error).utf8)) }
        member.clusterDigest = digest.value
        hasher.combine(entry.index)
        let first = try raftInvariants.stateMachineSafety(member: member.id, entry: entry, stateDigest: member.clusterDigest,
                                                          termBound: maxRunningTerm(), time: now)
        if first { statistics.entriesCommitted += 1 }
        guard let shell = managers[Int(member.id) - 1] else { return }
        if case .success(let events) = outcome { shell.cycle.applied(events) } else { shell.cycle.applied([]) }
        if case .success(let events) = outcome {
            if !shell.sessionWorkerByNode.isEmpty { route(events, shell: shell, routed: &routed) }
            if shell.schedulingIndex != nil {
                for event in events where event.kind == .task { shell.schedulingIndex!.update(event.id, to: member.cluster.task(event.id)) }
            }
        }
        if let waiting = shell.waiting.removeValue(forKey: entry.index) {
            try resolve(waiting.what, proposedInTerm: waiting.term, entry: entry, outcome: outcome, on: member, shell: shell)
        }
    }

    /// The Dispatcher's assignment streams: task changes of nodes with a session here.
    private func route(_ events: [ClusterEvent], shell: SimulatedManager, routed: inout [Int: (tasks: [ServiceTask], removed: [ObjectID])]) {
        for event in events {
            guard case .task(let task) = event.object, let nodeID = task.nodeID, let worker = shell.sessionWorkerByNode[nodeID] else { continue }
            if event.action == .removed {
                if shell.sessions[worker]!.sentDesired.removeValue(forKey: task.id) != nil {
                    routed[worker, default: ([], [])].removed.append(task.id)
                }
                continue
            }
            guard DispatchRules.concerns(task), shell.sessions[worker]!.sentDesired[task.id] != task.desiredState else { continue }
            shell.sessions[worker]!.sentDesired[task.id] = task.desiredState
            routed[worker, default: ([], [])].tasks.append(task)
        }
    }

    // MARK: Crashes

    func crash(_ member: SimulatedMember, why: String) {
        managers[Int(member.id) - 1] = nil
        crashed(member, why: why)
    }

    func restart(_ member: SimulatedMember) throws(InvariantViolation) {
        let state = try restartNode(of: member)
        managers[Int(member.id) - 1] = makeShell()
        hashRestart(of: member)
        record("manager \(member.id) restarted: term \(state.hardState.term) commit \(state.hardState.commit), \(state.entries.count) entries")
        try drain(member)
    }
}

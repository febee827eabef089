import ClusterState
import Scheduler

/// The Raft leader's orchestration loop without its I/O: when a pass is due,
/// and what one pass proposes. The manager's LeaderLoop (Sources/Daemon) and
/// `shoal-sim services` both drive it, so the simulator tests the decisions
/// the daemon makes.
///
/// The caller, on every kick (a committed change, its check interval):
/// 1. on becoming leader, waits until it has applied an entry of its own
///    term (its no-op): before that its state may lack entries the previous
///    leader committed, and a pass would create tasks for slots that already
///    have one; then calls ``leadershipStarted()``;
/// 2. calls ``isPassDue(now:)``, and if so ``pass(_:now:idGenerator:)`` on
///    its current state, proposes ``Pass/reconcileCommands`` and then
///    ``Pass/placementCommands`` (in batches of at most
///    ``maxCommandsPerProposal``), and runs no further pass until those
///    proposals are applied or refused (a second pass over the same state
///    would create the same missing tasks twice);
/// 3. calls ``applied(_:)`` with the events of every committed entry it
///    applies (none for a refused one), or ``markDirty()`` when it does not
///    know what changed.
///
/// A pass reconciles only the services that changed since the last one
/// (their spec or one of their tasks) and those whose wake-up time came —
/// what a full pass would propose for the others is what the last pass
/// proposed for them, so it is not worked out again. A change of a node, a
/// new leadership, ``markDirty()`` and every ``fullPassIntervalMilliseconds``
/// make the next pass a full one. A caller that never calls ``applied(_:)``
/// (the daemon's LeaderLoop, whose watch may drop events under load) gets
/// a full pass every time, as before.
public struct LeaderCycle: Sendable {
    /// A full pass at least this often even without changes.
    public static let safetyTickMilliseconds: Int64 = 2_000
    /// A pass over every service at least this often, as a safety net under the changed-services tracking.
    public static let fullPassIntervalMilliseconds: Int64 = 10_000
    /// How often the shell checks deadlines and wake-ups.
    public static let checkIntervalMilliseconds: Int64 = 200
    public static let maxCommandsPerProposal = 500

    /// What one pass decided.
    public struct Pass: Sendable {
        /// The orchestrator's commands (new tasks, stops, removals, rollout status).
        public var reconcileCommands: [ClusterCommand]
        /// The scheduler's assignments, then the reasons of tasks left pending.
        public var placementCommands: [ClusterCommand]
        /// Assignments made (figures, traces).
        public var assignmentCount: Int
    }

    public var orchestrator: Orchestrator
    public var scheduler: Scheduler
    private var dirty = true
    private var nextWakeUpMilliseconds: Int64?
    private var lastPassMilliseconds: Int64?
    /// Services changed since the last pass, each with the newest log index that changed it.
    private var changedServices: [ObjectID: UInt64] = [:]
    /// A full pass is due, and stays due until one runs on a state that has applied this index.
    private var fullPassThroughIndex: UInt64? = 0
    private var lastFullPassMilliseconds: Int64?
    /// When each service's restart delay or rollout step next ends, from the last pass that reconciled it.
    private var wakeUps: [ObjectID: Int64] = [:]
    /// Whether the caller feeds ``applied(_:)``: only then can a pass skip unchanged services.
    private var tracksChanges = false
    /// Passes run, and how many of them reconciled every service (tests, figures).
    public private(set) var passCount = 0
    public private(set) var fullPassCount = 0

    public init(orchestrator: Orchestrator = Orchestrator(), scheduler: Scheduler = Scheduler()) {
        self.orchestrator = orchestrator
        self.scheduler = scheduler
    }

    /// This manager just became leader: the next kick runs a pass.
    public mutating func leadershipStarted() {
        dirty = true
        fullPassThroughIndex = 0
        changedServices = [:]
        wakeUps = [:]
    }

    /// Something changed, what is unknown: the next kick runs a full pass.
    public mutating func markDirty() {
        dirty = true
        fullPassThroughIndex = fullPassThroughIndex ?? 0
    }

    /// A committed entry was applied with these events (none if refused):
    /// the next kick runs a pass, over the services they touch (a node's
    /// change can touch any service: a full pass).
    public mutating func applied(_ events: [ClusterEvent]) {
        dirty = true
        tracksChanges = true
        for event in events {
            switch event.object {
            case .service:
                changedServices[event.id] = max(changedServices[event.id] ?? 0, event.index)
            case .task(let task):
                changedServices[task.serviceID] = max(changedServices[task.serviceID] ?? 0, event.index)
            case .node:
                fullPassThroughIndex = max(fullPassThroughIndex ?? 0, event.index)
            case .secret, .config, .network, .route, .rollout:
                break  // the orchestrator reads services, tasks and nodes only
            }
        }
    }

    /// A change since the last pass, the orchestrator's wake-up time, or the safety tick.
    public func isPassDue(now: Int64) -> Bool {
        dirty || (nextWakeUpMilliseconds.map { now >= $0 } ?? false)
            || lastPassMilliseconds.map { now - $0 >= Self.safetyTickMilliseconds } ?? true
    }

    /// One orchestrator + scheduler pass over `state` (the leader's applied
    /// state). The scheduler places the tasks pending in `state`; the tasks
    /// this pass creates are placed by the next one, once they are applied.
    public mutating func pass<Generator: RandomNumberGenerator>(_ state: ClusterState, now: Int64,
                                                               idGenerator: inout Generator) -> Pass {
        let scheduler = self.scheduler
        return pass(state, now: now, idGenerator: &idGenerator, schedule: { scheduler.schedule($0) })
    }

    /// The same, placing through `schedule` (the daemon's LeaderLoop places
    /// from a ``SchedulingIndex`` it keeps from change events, which decides
    /// as ``Scheduler/schedule(_:)`` on `state` does).
    public mutating func pass<Generator: RandomNumberGenerator>(_ state: ClusterState, now: Int64, idGenerator: inout Generator,
                                                               schedule: (ClusterState) -> SchedulingDecision) -> Pass {
        dirty = false
        lastPassMilliseconds = now
        passCount += 1
        let reconciliation = reconcile(state, now: now, idGenerator: &idGenerator)
        let decision = schedule(state)
        return Pass(reconcileCommands: reconciliation.commands,
                    placementCommands: decision.commands + decision.statusUpdates(in: state, now: now),
                    assignmentCount: decision.assignments.count)
    }

    /// The orchestrator over every service, or over those changed or woken.
    private mutating func reconcile<Generator: RandomNumberGenerator>(_ state: ClusterState, now: Int64,
                                                                      idGenerator: inout Generator) -> Reconciliation {
        let full = !tracksChanges || fullPassThroughIndex != nil || lastFullPassMilliseconds.map { now - $0 >= Self.fullPassIntervalMilliseconds } ?? true
        var only: Set<ObjectID>?
        if !full {
            var services = Set(changedServices.keys)
            for (id, time) in wakeUps where now >= time { services.insert(id) }
            only = services
        }
        let reconciliation = orchestrator.reconcile(state, now: now, only: only, idGenerator: &idGenerator)
        // Changes the state already holds are reconciled; later ones wait for the next pass.
        changedServices = changedServices.filter { $0.value > state.appliedIndex }
        if let only {
            for id in only { wakeUps[id] = reconciliation.wakeUpsByService[id] }
        } else {
            fullPassCount += 1
            lastFullPassMilliseconds = now
            wakeUps = reconciliation.wakeUpsByService
            if let through = fullPassThroughIndex, through <= state.appliedIndex { fullPassThroughIndex = nil }
        }
        nextWakeUpMilliseconds = wakeUps.values.min()
        return reconciliation
    }

    /// `commands` cut into proposals of at most ``maxCommandsPerProposal``
    /// (each all or nothing: a `.batch` when it holds more than one).
    public static func proposals(_ commands: [ClusterCommand]) -> [ClusterCommand] {
        stride(from: 0, to: commands.count, by: maxCommandsPerProposal).map { start in
            let chunk = Array(commands[start..<min(start + maxCommandsPerProposal, commands.count)])
            return chunk.count == 1 ? chunk[0] : .batch(chunk)
        }
    }
}

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
/// 3. calls ``markDirty()`` whenever a committed change is applied.
public struct LeaderCycle: Sendable {
    /// A full pass at least this often even without changes.
    public static let safetyTickMilliseconds: Int64 = 2_000
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
    /// Passes run (tests, figures).
    public private(set) var passCount = 0

    public init(orchestrator: Orchestrator = Orchestrator(), scheduler: Scheduler = Scheduler()) {
        self.orchestrator = orchestrator
        self.scheduler = scheduler
    }

    /// This manager just became leader: the next kick runs a pass.
    public mutating func leadershipStarted() {
        dirty = true
    }

    /// A committed change was applied: the next kick runs a pass.
    public mutating func markDirty() {
        dirty = true
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
        let reconciliation = orchestrator.reconcile(state, now: now, idGenerator: &idGenerator)
        nextWakeUpMilliseconds = reconciliation.nextWakeUpMilliseconds
        let decision = schedule(state)
        return Pass(reconcileCommands: reconciliation.commands,
                    placementCommands: decision.commands + decision.statusUpdates(in: state, now: now),
                    assignmentCount: decision.assignments.count)
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

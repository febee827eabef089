import Raft
import Scheduler

/// What to simulate. Everything else (fault rates, delays, client mix,
/// compaction interval) is drawn from the seed by ``FaultPlan``.
public struct SimulationOptions: Sendable {
    /// What the members replicate and the clients do (`shoal-sim raft` or `shoal-sim cluster`).
    public var workload: SimulationWorkload = .raft
    /// Founding voters: 3, 5 or 7. Membership changes may grow the group to
    /// 7 members and shrink it to 3 voters.
    public var members: Int = 3
    /// End the fault phase after this many events (overrides `durationMs`).
    public var steps: Int? = nil
    /// Simulated milliseconds of the fault phase.
    public var durationMs: UInt64 = 3_000
    public var faults: [FaultKind] = FaultKind.allCases
    /// A defect to plant in every member (debug builds only).
    public var plantedBug: PlantedBug? = nil
    /// `services`: a defect to plant in the Scheduler or Orchestrator of every manager (debug builds only).
    public var servicesPlantedBug: ServicesPlantedBug? = nil
    /// `services`: simulated worker nodes.
    public var workers = SimulationOptions.defaultWorkers
    /// `services`: tasks the services ask for in all (replicated, global and job).
    public var tasks = SimulationOptions.defaultTasks
    /// Keep a human-readable line per event in ``SimulationResult/trace``.
    public var recordTrace: Bool = false
    /// After healing, the simulated time within which a proposal must commit
    /// and every member must apply it.
    public var livenessBoundMs: UInt64 = 10_000

    /// `cluster`: a leader confirms a refusal read from its state with a
    /// ReadIndex round before answering, as ManagerRaft does. Off only in
    /// tests, to show that the invariants catch the stale refusals of a
    /// deposed leader that does not know it yet.
    var confirmRefusals = true

    public static let defaultDurationMs: UInt64 = 3_000
    public static let defaultServicesDurationMs: UInt64 = 20_000
    public static let defaultWorkers = 1_000
    public static let defaultTasks = 10_000
    public static let allowedMemberCounts = [3, 5, 7]

    public init(members: Int = 3, workload: SimulationWorkload = .raft) {
        self.members = members
        self.workload = workload
        if workload == .services {
            durationMs = Self.defaultServicesDurationMs
            livenessBoundMs = 60_000
        }
    }

    public func has(_ fault: FaultKind) -> Bool { faults.contains(fault) }

    /// The `shoal-sim` command line that reruns `seed` exactly.
    public func replayCommand(seed: UInt64) -> String {
        var words = ["shoal-sim", workload.rawValue, "--seed", "\(seed)", "--members", "\(members)"]
        if let steps {
            words += ["--steps", "\(steps)"]
        } else {
            words += ["--duration", "\(durationMs)"]
        }
        if workload == .services { words += ["--workers", "\(workers)", "--tasks", "\(tasks)"] }
        if faults != FaultKind.allCases {
            words += ["--faults", faults.isEmpty ? "none" : faults.map(\.rawValue).joined(separator: ",")]
        }
        if let plantedBug { words += ["--bug", plantedBug.rawValue] }
        if let servicesPlantedBug { words += ["--bug", servicesPlantedBug.rawValue] }
        return words.joined(separator: " ")
    }
}

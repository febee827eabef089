/// Known defects that a debug build can plant in the Scheduler and the
/// Orchestrator, so that tests and `shoal-sim services --bug NAME` prove the
/// simulator's invariants catch them (as ``Raft/PlantedBug`` does for Raft).
/// Release builds compile every check for a planted bug out.
public enum ServicesPlantedBug: String, Sendable, CaseIterable {
    /// The scheduler leaves the constraint filter out of its pipeline, so
    /// tasks land on nodes their `--constraint` excludes.
    case schedulerIgnoresConstraints = "scheduler-ignores-constraints"
    /// The orchestrator replaces a task that must move (its template is
    /// outdated, or its node is drained) without asking the old one to stop,
    /// so the slot runs twice.
    case orchestratorKeepsReplacedTask = "orchestrator-keeps-replaced-task"

    public var summary: String {
        switch self {
        case .schedulerIgnoresConstraints: return "scheduler places tasks without checking their constraints"
        case .orchestratorKeepsReplacedTask: return "orchestrator creates a replacement without stopping the task it replaces"
        }
    }

    /// Whether `self` is `bug`, in a build that can plant bugs.
    @inline(__always)
    public static func isPlanted(_ bug: ServicesPlantedBug, in planted: ServicesPlantedBug?) -> Bool {
        #if DEBUG
        return planted == bug
        #else
        return false
        #endif
    }
}

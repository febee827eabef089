/// How a service replaces its tasks when their template changes
/// (`service update --update-*`), or when it rolls back (`--rollback-*`):
/// Docker's UpdateConfig, with its defaults. The orchestrator reads it; see
/// `Orchestrator` for what each field does to a rollout.
public struct UpdateConfig: Codable, Sendable, Equatable, Hashable {
    public enum Order: String, Codable, Sendable {
        /// Stop the old task, then start the new one: the slot is empty in between.
        case stopFirst = "stop-first"
        /// Start the new task, stop the old one once the new one runs: the slot briefly has two.
        case startFirst = "start-first"
    }

    public enum FailureAction: String, Codable, Sendable {
        /// Stop replacing slots; `service update` again resumes, `service rollback` goes back.
        case pause
        /// Keep going as if nothing failed.
        case `continue`
        /// Go back to the previous spec (a rollback that fails pauses).
        case rollback
    }

    /// Slots replaced at once; 0: every slot at once.
    public var parallelism: Int
    /// How long a replaced slot waits, once its new task runs, before the next slot starts.
    public var delayMilliseconds: Int64
    public var order: Order
    public var failureAction: FailureAction
    /// A new task that fails within this long of running (or before it runs)
    /// counts as a failure of the update; the update completes this long
    /// after its last task runs.
    public var monitorMilliseconds: Int64
    /// Failures tolerated, as a fraction of the service's slots (0...1):
    /// the failure action runs once failures exceed it.
    public var maxFailureRatio: Double

    public static let defaultMonitorMilliseconds: Int64 = 5_000

    public init(parallelism: Int = 1, delayMilliseconds: Int64 = 0, order: Order = .stopFirst, failureAction: FailureAction = .pause,
                monitorMilliseconds: Int64 = UpdateConfig.defaultMonitorMilliseconds, maxFailureRatio: Double = 0) {
        self.parallelism = parallelism
        self.delayMilliseconds = delayMilliseconds
        self.order = order
        self.failureAction = failureAction
        self.monitorMilliseconds = monitorMilliseconds
        self.maxFailureRatio = maxFailureRatio
    }
}

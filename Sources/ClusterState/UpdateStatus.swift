/// Where a service's rollout stands (`service inspect`'s UpdateStatus, as
/// Docker's). Set by ClusterState when an update or rollback begins, and by
/// the orchestrator when it pauses, rolls back or completes.
public struct UpdateStatus: Codable, Sendable, Equatable, Hashable {
    public enum State: String, Codable, Sendable {
        case updating, paused, completed
        case rollbackStarted = "rollback_started", rollbackPaused = "rollback_paused", rollbackCompleted = "rollback_completed"
    }

    public var state: State
    /// The log index the rollout began at: the tasks it created have a
    /// `createdIndex` at or above it.
    public var startedIndex: UInt64
    public var startedAtMilliseconds: Int64
    public var completedAtMilliseconds: Int64?
    public var message: String

    public init(state: State, startedIndex: UInt64, startedAtMilliseconds: Int64, completedAtMilliseconds: Int64? = nil, message: String) {
        self.state = state
        self.startedIndex = startedIndex
        self.startedAtMilliseconds = startedAtMilliseconds
        self.completedAtMilliseconds = completedAtMilliseconds
        self.message = message
    }

    /// Slots are being replaced (not paused, not done).
    public var isActive: Bool { state == .updating || state == .rollbackStarted }
    public var isRollback: Bool { [.rollbackStarted, .rollbackPaused, .rollbackCompleted].contains(state) }
}

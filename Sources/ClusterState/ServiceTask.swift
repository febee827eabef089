/// One scheduled instance of a service (Swarm's "task"; named so it does
/// not shadow Swift's `Task`). The orchestrator writes `desiredState` and the
/// scheduler `nodeID`; the agent on that node reports `status`.
public struct ServiceTask: Codable, Sendable, Equatable, Hashable {
    /// Ordered: a task's observed state only moves forward.
    public enum State: Int, Codable, Sendable, Comparable, CaseIterable, CustomStringConvertible {
        case new = 0, pending, assigned, accepted, preparing, starting, running
        case complete, shutdown, failed, rejected, orphaned

        public static func < (lhs: State, rhs: State) -> Bool { lhs.rawValue < rhs.rawValue }

        /// Terminal states end the task; its slot gets a new task if needed.
        public var isTerminal: Bool { self >= .complete }

        public var description: String { String(describing: Self.names[rawValue]) }
        private static let names = ["new", "pending", "assigned", "accepted", "preparing", "starting", "running",
                                    "complete", "shutdown", "failed", "rejected", "orphaned"]
    }

    public struct Status: Codable, Sendable, Equatable, Hashable {
        public var state: State
        public var timestampMilliseconds: Int64
        public var message: String
        public var error: String
        public var exitCode: Int32?
        public var containerID: String

        public init(state: State, timestampMilliseconds: Int64 = 0, message: String = "", error: String = "", exitCode: Int32? = nil, containerID: String = "") {
            self.state = state
            self.timestampMilliseconds = timestampMilliseconds
            self.message = message
            self.error = error
            self.exitCode = exitCode
            self.containerID = containerID
        }
    }

    public var meta: ObjectMeta
    public var serviceID: ObjectID
    /// Replicated services: 1...replicas. Global services: 0 (one per node).
    public var slot: Int
    public var nodeID: ObjectID?
    public var desiredState: State
    public var template: TaskTemplate
    /// The service's `forceUpdate` counter when this task was created.
    public var serviceForceUpdate: UInt64
    public var status: Status

    public var id: ObjectID { meta.id }
}

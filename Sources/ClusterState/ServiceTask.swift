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

    /// The verdict of the container's health check (Docker's `State.Health.Status`).
    public enum Health: String, Codable, Sendable {
        /// Checks run but none has passed yet: the task stays `starting`.
        case starting
        case healthy
        /// The agent stops the container and reports the task failed.
        case unhealthy
    }

    public struct Status: Codable, Sendable, Equatable, Hashable {
        public var state: State
        public var timestampMilliseconds: Int64
        public var message: String
        public var error: String
        public var exitCode: Int32?
        public var containerID: String
        /// nil: the task's container has no health check.
        public var health: Health?
        /// The host ports the task's published ports got on its node
        /// (Swarm's PortStatus): the spec's, or the ones picked for
        /// `published` 0.
        public var publishedPorts: [TaskTemplate.PublishedPort]

        public init(state: State, timestampMilliseconds: Int64 = 0, message: String = "", error: String = "", exitCode: Int32? = nil, containerID: String = "",
                    health: Health? = nil, publishedPorts: [TaskTemplate.PublishedPort] = []) {
            self.state = state
            self.timestampMilliseconds = timestampMilliseconds
            self.message = message
            self.error = error
            self.exitCode = exitCode
            self.containerID = containerID
            self.health = health
            self.publishedPorts = publishedPorts
        }

        private enum CodingKeys: String, CodingKey { case state, timestampMilliseconds, message, error, exitCode, containerID, health, publishedPorts }

        /// Statuses written before health and ports were reported decode without them.
        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            state = try container.decode(State.self, forKey: .state)
            timestampMilliseconds = try container.decode(Int64.self, forKey: .timestampMilliseconds)
            message = try container.decode(String.self, forKey: .message)
            error = try container.decode(String.self, forKey: .error)
            exitCode = try container.decodeIfPresent(Int32.self, forKey: .exitCode)
            containerID = try container.decode(String.self, forKey: .containerID)
            health = try container.decodeIfPresent(Health.self, forKey: .health)
            publishedPorts = try container.decodeIfPresent([TaskTemplate.PublishedPort].self, forKey: .publishedPorts) ?? []
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
    /// When earlier tasks of this slot failed and the restart policy answered
    /// with a replacement (milliseconds, oldest first), as far back as the
    /// policy's window and max attempts need: the orchestrator counts
    /// attempts from it, so the count survives history retention and a
    /// leader change. Empty for a task that is not a restart.
    public var restartHistoryMilliseconds: [Int64]
    /// When the agent reported it running (its status timestamp then); nil
    /// if it never ran. Rolling updates monitor new tasks from this time.
    public var runningSinceMilliseconds: Int64?

    public var id: ObjectID { meta.id }

    public init(meta: ObjectMeta, serviceID: ObjectID, slot: Int, nodeID: ObjectID?, desiredState: State, template: TaskTemplate,
                serviceForceUpdate: UInt64, status: Status, restartHistoryMilliseconds: [Int64] = []) {
        self.meta = meta
        self.serviceID = serviceID
        self.slot = slot
        self.nodeID = nodeID
        self.desiredState = desiredState
        self.template = template
        self.serviceForceUpdate = serviceForceUpdate
        self.status = status
        self.restartHistoryMilliseconds = restartHistoryMilliseconds
    }

    private enum CodingKeys: String, CodingKey {
        case meta, serviceID, slot, nodeID, desiredState, template, serviceForceUpdate, status, restartHistoryMilliseconds, runningSinceMilliseconds
    }

    /// Snapshots written before `restartHistoryMilliseconds` existed decode with an empty history.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        meta = try container.decode(ObjectMeta.self, forKey: .meta)
        serviceID = try container.decode(ObjectID.self, forKey: .serviceID)
        slot = try container.decode(Int.self, forKey: .slot)
        nodeID = try container.decodeIfPresent(ObjectID.self, forKey: .nodeID)
        desiredState = try container.decode(State.self, forKey: .desiredState)
        template = try container.decode(TaskTemplate.self, forKey: .template)
        serviceForceUpdate = try container.decode(UInt64.self, forKey: .serviceForceUpdate)
        status = try container.decode(Status.self, forKey: .status)
        restartHistoryMilliseconds = try container.decodeIfPresent([Int64].self, forKey: .restartHistoryMilliseconds) ?? []
        runningSinceMilliseconds = try container.decodeIfPresent(Int64.self, forKey: .runningSinceMilliseconds)
    }
}

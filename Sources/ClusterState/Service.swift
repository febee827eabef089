/// A declared workload: what to run and how many. The orchestrator derives
/// tasks from it.
public struct Service: Codable, Sendable, Equatable, Hashable {
    public enum Mode: Codable, Sendable, Equatable, Hashable {
        case replicated(replicas: Int)
        case global
        case replicatedJob(completions: Int, maxConcurrent: Int)
        case globalJob
    }

    public struct Spec: Codable, Sendable, Equatable, Hashable {
        public var name: String
        public var labels: [String: String]
        public var mode: Mode
        public var task: TaskTemplate
        /// How tasks are replaced when `task` changes (`--update-*`).
        public var update: UpdateConfig
        /// How tasks are replaced when the service rolls back (`--rollback-*`).
        public var rollback: UpdateConfig

        public init(name: String, labels: [String: String] = [:], mode: Mode = .replicated(replicas: 1), task: TaskTemplate,
                    update: UpdateConfig = UpdateConfig(), rollback: UpdateConfig = UpdateConfig()) {
            self.name = name
            self.labels = labels
            self.mode = mode
            self.task = task
            self.update = update
            self.rollback = rollback
        }

        private enum CodingKeys: String, CodingKey { case name, labels, mode, task, update, rollback }

        /// Specs stored before update configs existed decode with Docker's defaults.
        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            labels = try container.decode([String: String].self, forKey: .labels)
            mode = try container.decode(Mode.self, forKey: .mode)
            task = try container.decode(TaskTemplate.self, forKey: .task)
            update = try container.decodeIfPresent(UpdateConfig.self, forKey: .update) ?? UpdateConfig()
            rollback = try container.decodeIfPresent(UpdateConfig.self, forKey: .rollback) ?? UpdateConfig()
        }
    }

    public var meta: ObjectMeta
    public var spec: Spec
    /// The spec before the last update, for rollback.
    public var previousSpec: Spec?
    /// Bumped by `service update --force` to replace tasks whose spec did not change.
    public var forceUpdate: UInt64
    /// The rollout of the last template change or rollback; nil before the first.
    public var updateStatus: UpdateStatus?

    public var id: ObjectID { meta.id }
}

/// How each task of a service runs.
public struct TaskTemplate: Codable, Sendable, Equatable, Hashable {
    public struct RestartPolicy: Codable, Sendable, Equatable, Hashable {
        public enum Condition: String, Codable, Sendable { case none, onFailure = "on-failure", any }
        public var condition: Condition
        public var delayMilliseconds: Int64
        /// 0: unlimited.
        public var maxAttempts: Int
        /// 0: attempts are counted forever.
        public var windowMilliseconds: Int64

        public init(condition: Condition = .any, delayMilliseconds: Int64 = 5_000, maxAttempts: Int = 0, windowMilliseconds: Int64 = 0) {
            self.condition = condition
            self.delayMilliseconds = delayMilliseconds
            self.maxAttempts = maxAttempts
            self.windowMilliseconds = windowMilliseconds
        }
    }

    public struct Resources: Codable, Sendable, Equatable, Hashable {
        public var reservedNanoCPUs: Int64 = 0
        public var reservedMemoryBytes: Int64 = 0
        public var limitNanoCPUs: Int64 = 0
        public var limitMemoryBytes: Int64 = 0

        public init(reservedNanoCPUs: Int64 = 0, reservedMemoryBytes: Int64 = 0, limitNanoCPUs: Int64 = 0, limitMemoryBytes: Int64 = 0) {
            self.reservedNanoCPUs = reservedNanoCPUs
            self.reservedMemoryBytes = reservedMemoryBytes
            self.limitNanoCPUs = limitNanoCPUs
            self.limitMemoryBytes = limitMemoryBytes
        }
    }

    public struct Placement: Codable, Sendable, Equatable, Hashable {
        /// `node.labels.zone==eu`, `node.role!=manager`, ...
        public var constraints: [String] = []
        /// `spread=node.labels.zone`
        public var preferences: [String] = []
        /// 0: unlimited.
        public var maxReplicasPerNode: Int = 0
        /// `os/arch` (or `os`) the image runs on, from its manifest; empty: any.
        public var platforms: [String] = []

        public init(constraints: [String] = [], preferences: [String] = [], maxReplicasPerNode: Int = 0, platforms: [String] = []) {
            self.constraints = constraints
            self.preferences = preferences
            self.maxReplicasPerNode = maxReplicasPerNode
            self.platforms = platforms
        }

        private enum CodingKeys: String, CodingKey { case constraints, preferences, maxReplicasPerNode, platforms }

        /// Specs stored before `platforms` existed decode with no platform restriction.
        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            constraints = try container.decode([String].self, forKey: .constraints)
            preferences = try container.decode([String].self, forKey: .preferences)
            maxReplicasPerNode = try container.decode(Int.self, forKey: .maxReplicasPerNode)
            platforms = try container.decodeIfPresent([String].self, forKey: .platforms) ?? []
        }
    }

    public struct PublishedPort: Codable, Sendable, Equatable, Hashable {
        public enum TransportProtocol: String, Codable, Sendable { case tcp, udp }
        public enum Mode: String, Codable, Sendable { case ingress, host }
        /// 0 (host mode): a free port the node picks for each task, reported
        /// in the task's status (Swarm's dynamic host ports).
        public var publishedPort: Int
        public var targetPort: Int
        public var transportProtocol: TransportProtocol
        public var mode: Mode
        /// In a task's status only: the node address the port is bound to
        /// (its agent's publish address: 127.0.0.1 on a loopback node or
        /// with the daemon's `--default-publish-address`, 0.0.0.0 for every
        /// address). nil in a spec, which cannot name one (Swarm's neither),
        /// and from agents that did not report it.
        public var hostAddress: String?

        public init(publishedPort: Int, targetPort: Int, transportProtocol: TransportProtocol = .tcp, mode: Mode = .host, hostAddress: String? = nil) {
            self.publishedPort = publishedPort
            self.targetPort = targetPort
            self.transportProtocol = transportProtocol
            self.mode = mode
            self.hostAddress = hostAddress
        }
    }

    /// Docker's HEALTHCHECK for the task's container (`--health-cmd`,
    /// `--health-interval`, `--health-timeout`, `--health-retries`,
    /// `--health-start-period`, `--no-healthcheck`). What is left zero or
    /// empty comes from the image's HEALTHCHECK, then Docker's defaults. A
    /// task with a check counts as running only once healthy; an unhealthy
    /// one is stopped and fails, and its restart policy decides (Swarm).
    public struct HealthCheck: Codable, Sendable, Equatable, Hashable {
        /// argv run inside the container (`["sh", "-c", CMD]` for
        /// `--health-cmd CMD`); empty: the image's command.
        public var command: [String]
        /// `--no-healthcheck`: no checks, not even the image's.
        public var disabled: Bool
        /// 0: the image's, else 30 s.
        public var intervalMilliseconds: Int64
        /// 0: the image's, else 30 s.
        public var timeoutMilliseconds: Int64
        /// 0: the image's, else 3.
        public var retries: Int
        /// 0: the image's, else none.
        public var startPeriodMilliseconds: Int64

        public init(command: [String] = [], disabled: Bool = false, intervalMilliseconds: Int64 = 0, timeoutMilliseconds: Int64 = 0,
                    retries: Int = 0, startPeriodMilliseconds: Int64 = 0) {
            self.command = command
            self.disabled = disabled
            self.intervalMilliseconds = intervalMilliseconds
            self.timeoutMilliseconds = timeoutMilliseconds
            self.retries = retries
            self.startPeriodMilliseconds = startPeriodMilliseconds
        }

        /// `--no-healthcheck`.
        public static let noHealthCheck = HealthCheck(disabled: true)
    }

    public struct Mount: Codable, Sendable, Equatable, Hashable {
        public enum Kind: String, Codable, Sendable { case bind, volume }
        public var kind: Kind
        public var source: String
        public var target: String
        public var readOnly: Bool

        public init(kind: Kind, source: String, target: String, readOnly: Bool = false) {
            self.kind = kind
            self.source = source
            self.target = target
            self.readOnly = readOnly
        }
    }

    public var image: String
    public var command: [String] = []
    public var arguments: [String] = []
    public var environment: [String] = []
    public var workingDirectory: String = ""
    public var user: String = ""
    public var mounts: [Mount] = []
    public var resources = Resources()
    public var placement = Placement()
    public var restartPolicy = RestartPolicy()
    public var ports: [PublishedPort] = []
    /// nil: the image's HEALTHCHECK, if it has one.
    public var healthCheck: HealthCheck?
    public var stopGracePeriodMilliseconds: Int64 = 10_000

    public init(image: String) {
        self.image = image
    }
}

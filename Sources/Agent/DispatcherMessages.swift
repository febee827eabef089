import ClusterState

/// Method names of the dispatcher, served by every manager's RPC endpoint
/// (callers: agents, with a worker or manager certificate).
public enum DispatcherMethods {
    /// Server stream: opens a session; answers ``AssignmentBatch``es.
    public static let session = "shoal.dispatcher.session"
    /// Unary: ``HeartbeatRequest`` → ``HeartbeatReply``.
    public static let heartbeat = "shoal.dispatcher.heartbeat"
    /// Unary: ``StatusBatch`` → ``DispatcherEmpty``.
    public static let status = "shoal.dispatcher.status"
}

/// What an agent says when it opens a session: who it runs on and what the
/// host offers (the node id comes from its certificate, never from here).
public struct SessionRequest: Codable, Sendable, Equatable {
    public var hostname: String
    public var address: String
    public var platform: String
    public var resources: Node.Resources

    public init(hostname: String, address: String, platform: String, resources: Node.Resources) {
        self.hostname = hostname
        self.address = address
        self.platform = platform
        self.resources = resources
    }
}

/// One message of the assignment stream. The first of a session is `full`:
/// the node's complete task list, replacing whatever the agent knew (tasks it
/// runs that are not listed were removed meanwhile). Later ones are
/// incremental: tasks new to the node or whose desired state changed, and
/// tasks removed from the store.
public struct AssignmentBatch: Codable, Sendable, Equatable {
    public var sessionID: String
    public var full: Bool
    public var tasks: [ServiceTask]
    public var removedTaskIDs: [ObjectID]
    /// How often the agent must heartbeat (the deadline is a multiple of it).
    public var heartbeatPeriodMilliseconds: Int64

    public init(sessionID: String, full: Bool, tasks: [ServiceTask], removedTaskIDs: [ObjectID], heartbeatPeriodMilliseconds: Int64) {
        self.sessionID = sessionID
        self.full = full
        self.tasks = tasks
        self.removedTaskIDs = removedTaskIDs
        self.heartbeatPeriodMilliseconds = heartbeatPeriodMilliseconds
    }
}

public struct HeartbeatRequest: Codable, Sendable, Equatable {
    public var sessionID: String
    public init(sessionID: String) { self.sessionID = sessionID }
}

public struct HeartbeatReply: Codable, Sendable, Equatable {
    public var periodMilliseconds: Int64
    public init(periodMilliseconds: Int64) { self.periodMilliseconds = periodMilliseconds }
}

/// The observed state of one task, as the agent saw it.
public struct TaskStatusReport: Codable, Sendable, Equatable {
    public var taskID: ObjectID
    public var status: ServiceTask.Status
    public init(taskID: ObjectID, status: ServiceTask.Status) {
        self.taskID = taskID
        self.status = status
    }
}

public struct StatusBatch: Codable, Sendable, Equatable {
    public var sessionID: String
    public var reports: [TaskStatusReport]
    public init(sessionID: String, reports: [TaskStatusReport]) {
        self.sessionID = sessionID
        self.reports = reports
    }
}

public struct DispatcherEmpty: Codable, Sendable, Equatable {
    public init() {}
}

/// Every dispatcher answer: the value, or why not.
public struct DispatcherReply<Value: Codable & Sendable>: Codable, Sendable {
    public var value: Value?
    public var error: DispatcherError?
    public init(value: Value? = nil, error: DispatcherError? = nil) {
        self.value = value
        self.error = error
    }
}

/// A refusal from the dispatcher (`code` as the control API's: `not_found`,
/// `unavailable`, `session_replaced`, ...).
public struct DispatcherError: Error, Codable, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(message) (\(code))" }
}

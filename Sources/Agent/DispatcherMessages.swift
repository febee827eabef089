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
    /// Unary: ``TaskLogChunk`` → ``TaskLogChunkReply``: lines of a log a
    /// manager asked for in ``AssignmentBatch/logRequests``.
    public static let logs = "shoal.dispatcher.logs"
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
    /// Task logs a manager wants (`service logs`): the agent sends their
    /// lines back with ``DispatcherMethods/logs``.
    public var logRequests: [TaskLogRequest]
    /// Service id → name for the services of `tasks` the manager knows, so
    /// that the node names and labels their containers (`ps`). Absent from
    /// older managers.
    public var serviceNames: [String: String]?

    public init(sessionID: String, full: Bool, tasks: [ServiceTask], removedTaskIDs: [ObjectID], heartbeatPeriodMilliseconds: Int64,
                logRequests: [TaskLogRequest] = [], serviceNames: [String: String]? = nil) {
        self.sessionID = sessionID
        self.full = full
        self.tasks = tasks
        self.removedTaskIDs = removedTaskIDs
        self.heartbeatPeriodMilliseconds = heartbeatPeriodMilliseconds
        self.logRequests = logRequests
        self.serviceNames = serviceNames
    }

    private enum CodingKeys: String, CodingKey { case sessionID, full, tasks, removedTaskIDs, heartbeatPeriodMilliseconds, logRequests, serviceNames }

    /// Managers that predate log requests (or service names) send none.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        sessionID = try container.decode(String.self, forKey: .sessionID)
        full = try container.decode(Bool.self, forKey: .full)
        tasks = try container.decode([ServiceTask].self, forKey: .tasks)
        removedTaskIDs = try container.decode([ObjectID].self, forKey: .removedTaskIDs)
        heartbeatPeriodMilliseconds = try container.decode(Int64.self, forKey: .heartbeatPeriodMilliseconds)
        logRequests = try container.decodeIfPresent([TaskLogRequest].self, forKey: .logRequests) ?? []
        serviceNames = try container.decodeIfPresent([String: String].self, forKey: .serviceNames)
    }
}

/// A manager asks for one task's log (`shoal service logs` on any manager).
public struct TaskLogRequest: Codable, Sendable, Equatable {
    /// Names the answer's chunks.
    public var requestID: String
    public var taskID: ObjectID
    /// Keep sending what the container writes until it exits or the
    /// manager's reader goes away.
    public var follow: Bool
    /// Start with at most the last this many lines; nil: all kept.
    public var tail: Int?

    public init(requestID: String, taskID: ObjectID, follow: Bool, tail: Int?) {
        self.requestID = requestID
        self.taskID = taskID
        self.follow = follow
        self.tail = tail
    }
}

/// One line a task's container wrote.
public struct TaskLogLine: Codable, Sendable, Equatable {
    /// `stdout` or `stderr`.
    public var stream: String
    /// RFC 3339 with nanoseconds, UTC.
    public var time: String
    /// The line, its newline included.
    public var log: String

    public init(stream: String, time: String, log: String) {
        self.stream = stream
        self.time = time
        self.log = log
    }
}

/// Lines of one ``TaskLogRequest``, in order. `end`: nothing follows (the
/// log was sent, or the followed container exited); `error`: the log could
/// not be read. An empty chunk while following asks whether to go on.
public struct TaskLogChunk: Codable, Sendable, Equatable {
    public var sessionID: String
    public var requestID: String
    public var lines: [TaskLogLine]
    public var end: Bool
    public var error: String?

    public init(sessionID: String, requestID: String, lines: [TaskLogLine], end: Bool, error: String? = nil) {
        self.sessionID = sessionID
        self.requestID = requestID
        self.lines = lines
        self.end = end
        self.error = error
    }
}

/// `keepSending` false: the reader went away; stop.
public struct TaskLogChunkReply: Codable, Sendable, Equatable {
    public var keepSending: Bool
    public init(keepSending: Bool) { self.keepSending = keepSending }
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

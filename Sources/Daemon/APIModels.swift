import ClusterState
import Foundation
import Manager
import Raft

// The control API's request and response bodies (JSON). Field names are the
// API's contract, documented in Sources/Daemon/openapi.json.

public struct InitRequest: Codable, Sendable {
    public var listenAddress: String?
    public var advertiseAddress: String?
    /// Where the remote control API (mutual TLS) listens; default 0.0.0.0:4243.
    public var apiListenAddress: String?
    public var forceNewCluster: Bool?

    public init(listenAddress: String? = nil, advertiseAddress: String? = nil, apiListenAddress: String? = nil, forceNewCluster: Bool? = nil) {
        self.listenAddress = listenAddress
        self.advertiseAddress = advertiseAddress
        self.apiListenAddress = apiListenAddress
        self.forceNewCluster = forceNewCluster
    }
}

public struct InitReply: Codable, Sendable {
    public var nodeID: String
    public var clusterID: String
    public var advertiseAddress: String
    public var apiAddress: String
    public var workerToken: String
    public var managerToken: String
}

public struct JoinRequest: Codable, Sendable {
    public var token: String
    public var address: String
    public var listenAddress: String?
    public var advertiseAddress: String?
    public var apiListenAddress: String?

    public init(token: String, address: String, listenAddress: String? = nil, advertiseAddress: String? = nil, apiListenAddress: String? = nil) {
        self.token = token
        self.address = address
        self.listenAddress = listenAddress
        self.advertiseAddress = advertiseAddress
        self.apiListenAddress = apiListenAddress
    }
}

public struct JoinReply: Codable, Sendable {
    public var nodeID: String
    public var role: String
}

public struct LeaveRequest: Codable, Sendable {
    public var force: Bool?
    public init(force: Bool? = nil) { self.force = force }
}

public struct RaftStatusView: Codable, Sendable, Equatable {
    public var raftID: UInt64
    public var role: String
    public var leader: UInt64
    public var term: UInt64
    public var commitIndex: UInt64
    public var appliedIndex: UInt64
    public var snapshotIndex: UInt64
    public var voters: [UInt64]
    public var learners: [UInt64]

    init(_ status: ManagerRaft.Status) {
        raftID = status.id
        role = status.role.rawValue
        leader = status.leader
        term = status.term
        commitIndex = status.commitIndex
        appliedIndex = status.appliedIndex
        snapshotIndex = status.snapshotIndex
        voters = status.configuration.voters
        learners = status.configuration.learners
    }
}

public struct DaemonStatus: Codable, Sendable {
    /// none, worker or manager.
    public var role: String
    public var nodeID: String?
    public var clusterID: String?
    public var advertiseAddress: String?
    public var apiAddress: String?
    public var managerAddresses: [String]
    public var raft: RaftStatusView?
}

public struct ManagerStatusView: Codable, Sendable, Equatable {
    public var raftID: UInt64
    public var address: String
    public var leader: Bool
    /// voter or learner (or none once removed from the group).
    public var suffrage: String
    /// reachable or unreachable, as the answering manager sees it.
    public var reachability: String
}

public struct NodeView: Codable, Sendable, Equatable {
    public var id: String
    public var version: UInt64
    public var createdAtMilliseconds: Int64
    public var updatedAtMilliseconds: Int64
    public var spec: Node.Spec
    public var status: Node.Status
    public var managerStatus: ManagerStatusView?
}

public struct MemberView: Codable, Sendable, Equatable {
    public var raftID: UInt64
    public var nodeID: String?
    public var address: String?
    public var suffrage: String
    public var leader: Bool
    public var reachability: String
}

public struct ClusterView: Codable, Sendable {
    public var clusterID: String
    public var leaderNodeID: String?
    public var raft: RaftStatusView
    public var members: [MemberView]
    /// How often workers in session with the answering manager report
    /// (`shoal daemon --heartbeat-period`; Swarm's dispatcher heartbeat).
    public var heartbeatPeriodMilliseconds: Int64?
}

public struct NodeUpdateRequest: Codable, Sendable {
    public typealias Availability = Node.Availability
    public var version: UInt64?
    public var availability: Node.Availability?
    public var labelAdd: [String: String]?
    public var labelRemove: [String]?

    public init(version: UInt64? = nil, availability: Node.Availability? = nil, labelAdd: [String: String]? = nil, labelRemove: [String]? = nil) {
        self.version = version
        self.availability = availability
        self.labelAdd = labelAdd
        self.labelRemove = labelRemove
    }
}

public struct ServiceUpdateRequest: Codable, Sendable {
    public var version: UInt64?
    public var spec: Service.Spec
    public var force: Bool?
}

public struct ServiceRollbackRequest: Codable, Sendable {
    public var version: UInt64?

    public init(version: UInt64?) {
        self.version = version
    }
}

public struct SecretCreateRequest: Codable, Sendable {
    public var name: String
    public var labels: [String: String]?
    /// Base64.
    public var data: String
}

public struct SecretView: Codable, Sendable {
    public var id: String
    public var version: UInt64
    public var createdAtMilliseconds: Int64
    public var updatedAtMilliseconds: Int64
    public var name: String
    public var labels: [String: String]
}

public struct ConfigCreateRequest: Codable, Sendable {
    public var name: String
    public var labels: [String: String]?
    /// Base64.
    public var data: String
}

public struct ConfigView: Codable, Sendable {
    public var id: String
    public var version: UInt64
    public var createdAtMilliseconds: Int64
    public var updatedAtMilliseconds: Int64
    public var name: String
    public var labels: [String: String]
    /// Base64.
    public var data: String
}

public struct JoinTokensView: Codable, Sendable {
    public var worker: String
    public var manager: String
}

public struct RotatedTokenView: Codable, Sendable {
    public var role: String
    public var token: String
}

public struct ClientCertificateRequest: Codable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct ClientCertificateReply: Codable, Sendable {
    public var certificatePEM: String
    public var keyPEM: String
    public var rootPEM: String
}

/// `GET /v1/tasks/{id}/logs`: what the task's container wrote so far.
public struct TaskLogsView: Codable, Sendable {
    public var taskID: String
    public var standardOutput: String
    public var standardError: String
}

/// One line of `GET /v1/services/{id}/logs` (NDJSON): a line a task's
/// container wrote, or (`error` set) why a task's log cannot be read.
public struct ServiceLogLine: Codable, Sendable, Equatable {
    public var taskID: String
    public var slot: Int
    public var nodeID: String
    /// `stdout` or `stderr`; empty with `error`.
    public var stream: String
    /// RFC 3339 with nanoseconds, UTC; empty with `error`.
    public var time: String
    /// The line, its newline included.
    public var log: String
    public var error: String?

    public init(taskID: String, slot: Int, nodeID: String, stream: String = "", time: String = "", log: String = "", error: String? = nil) {
        self.taskID = taskID
        self.slot = slot
        self.nodeID = nodeID
        self.stream = stream
        self.time = time
        self.log = log
        self.error = error
    }
}

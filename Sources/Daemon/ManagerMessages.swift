import ClusterState
import Foundation
import Raft

/// Work only the leader can do. A manager that is not the leader sends it to
/// the leader over mutual TLS (`shoal.control.leader`); the leader carries it
/// out and answers with the result or the typed error.
enum LeaderRequest: Codable, Sendable {
    /// Propose a command (already validated by the forwarding manager).
    case propose(command: ClusterCommand, timeMilliseconds: Int64)
    /// A joining manager: record its Raft id and address, add it as a learner.
    case addLearner(nodeID: ObjectID, raftID: UInt64, address: String)
    /// A learner that caught up becomes a voter.
    case promoteMember(raftID: UInt64)
    /// Remove a manager from Raft and make its node a worker.
    case demote(nodeID: ObjectID)
    /// Remove a node from the cluster (demoting it first with `force`).
    case removeNode(nodeID: ObjectID, force: Bool)
    /// Replace one role's join token with a fresh one.
    case rotateJoinToken(role: String)
    /// An agent's heartbeat, forwarded by the manager that holds its session.
    case heartbeat(nodeID: ObjectID)
}

enum LeaderReply: Codable, Sendable {
    case events([ClusterEvent])
    case commitIndex(UInt64)
    case token(String)
    case done
}

/// Every JSON RPC answer: the value, or the API error to pass on.
struct RPCReply<Value: Codable & Sendable>: Codable, Sendable {
    var value: Value?
    var error: APIError?
}

/// `shoal.node.register`: a node announces itself after joining or restarting.
struct NodeRegistration: Codable, Sendable {
    var hostname: String
    var address: String
}

/// `shoal.node.self`: the caller's own node and the managers it can use.
struct NodeSelfReply: Codable, Sendable {
    var node: Node?
    var managerAddresses: [String]
}

/// `shoal.node.certificate`: a certificate for the role the caller's node
/// spec now has (after `node promote` or `node demote`).
struct CertificateRequestMessage: Codable, Sendable {
    var csrPEM: String
}

struct CertificateReplyMessage: Codable, Sendable {
    var certificatePEM: String
    var rootPEM: String
}

/// `shoal.manager.keys`: what a new manager needs besides its certificate.
struct ManagerKeysReply: Codable, Sendable {
    var rootKeyPEM: String
    var secretsKey: [UInt8]
    /// Raft id → address of every manager, to seed the peer transport.
    var managers: [UInt64: String]
}

/// `shoal.manager.join`: a manager with a fresh Raft log asks to be added.
struct ManagerJoinRequest: Codable, Sendable {
    var raftID: UInt64
    var address: String
}

/// The join tokens, replicated as the config object `shoal.join-tokens`.
struct JoinTokens: Codable, Sendable, Equatable {
    static let configName = "shoal.join-tokens"
    var worker: String
    var manager: String
}

/// Method names of the manager RPC endpoint (besides Raft's and the PKI's).
enum ManagerMethods {
    static let leader = "shoal.control.leader"
    static let register = "shoal.node.register"
    static let nodeSelf = "shoal.node.self"
    static let certificate = "shoal.node.certificate"
    static let leave = "shoal.node.leave"
    static let keys = "shoal.manager.keys"
    static let join = "shoal.manager.join"
    static let promote = "shoal.manager.promote"
    static let ping = "shoal.manager.ping"
    /// Server stream: ``TaskLogForwardRequest`` → `RPCReply<[TaskLogLine]>`s:
    /// a task's log from an agent whose session is on the called manager
    /// (first reply empty when it is, error `no_session` when not).
    static let taskLogs = "shoal.manager.taskLogs"
}

/// `shoal.manager.taskLogs`: the log of `taskID`, run by `nodeID`.
struct TaskLogForwardRequest: Codable, Sendable {
    var nodeID: ObjectID
    var taskID: ObjectID
    var follow: Bool
    var tail: Int?
}

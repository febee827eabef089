import ClusterState
import Foundation
import HTTP
import Manager
import Raft
import RPC

/// An error as the control API answers it: `{"code","message","hint"}` with
/// an HTTP status. Also what managers hand each other over RPC, so a
/// follower forwards the leader's refusal to its client unchanged.
public struct APIError: Error, Codable, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status; travels in the status line, not in the body.
    public var status: Int
    /// A stable machine-readable code (`invalid_argument`, `not_found`, ...).
    public var code: String
    /// What went wrong, naming the field or object.
    public var message: String
    /// What to do next.
    public var hint: String

    public init(status: Int, code: String, message: String, hint: String = "") {
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String { hint.isEmpty ? message : "\(message) (\(hint))" }

    /// The JSON body: exactly code, message and hint.
    struct Body: Codable { var code: String; var message: String; var hint: String }

    var response: HTTPServerResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var bytes = Array(try! encoder.encode(Body(code: code, message: message, hint: hint)))
        bytes.append(UInt8(ascii: "\n"))
        return HTTPServerResponse(status: HTTPStatus(code: status), headers: ["Content-Type": "application/json"], body: .bytes(bytes))
    }

    // MARK: Common errors

    static func invalid(_ field: String, _ reason: String) -> APIError {
        APIError(status: 400, code: "invalid_argument", message: "invalid \(field): \(reason)", hint: "fix the field and retry; nothing was written")
    }

    static func notFound(_ what: String) -> APIError {
        APIError(status: 404, code: "not_found", message: "\(what) not found", hint: "list them to see what exists")
    }

    static func notLeader(_ detail: String) -> APIError {
        APIError(status: 503, code: "not_leader", message: detail, hint: "retry shortly: the managers are electing a leader")
    }

    static func noQuorum(_ what: String, after timeout: Duration) -> APIError {
        APIError(status: 503, code: "no_quorum",
                 message: "\(what) did not complete within \(timeout): no leader with a quorum of managers answered",
                 hint: "bring enough managers back (a majority must be up); reads with ?stale=true still answer; as a last resort run `shoal init --force-new-cluster` on a surviving manager")
    }

    static let notAManager = APIError(
        status: 503, code: "not_a_manager", message: "this daemon is not a manager of a cluster",
        hint: "run `shoal init` to create a cluster, or point --host at a manager")

    /// The closest API error for anything a handler threw.
    static func from(_ error: any Error) -> APIError {
        switch error {
        case let error as APIError: return error
        case let error as ManagerError: return from(error)
        case let error as ClusterStateError: return from(error)
        case let error as RaftError: return from(ManagerError.raft(error))
        case let error as RPCError:
            if error.code == .permissionDenied {
                return APIError(status: 403, code: "permission_denied", message: error.message, hint: error.hint)
            }
            return APIError(status: 503, code: "unavailable", message: "a manager could not be reached: \(error.message)", hint: error.hint)
        default:
            return APIError(status: 500, code: "internal", message: "\(error)", hint: "this is a bug or an environment problem; check the daemon's log")
        }
    }

    static func from(_ error: ManagerError) -> APIError {
        switch error {
        case .raft(let raft):
            switch raft {
            case .noLeader, .notLeader, .leadershipTransferInProgress:
                return notLeader(raft.description)
            case .configurationChangeInProgress:
                return APIError(status: 503, code: "membership_change_in_progress", message: raft.description, hint: "retry in a moment")
            case .invalidConfigurationChange(let reason):
                return APIError(status: 409, code: "failed_precondition", message: "invalid membership change: \(reason)", hint: "check `shoal cluster inspect`")
            case .proposalDropped:
                return APIError(status: 503, code: "overloaded", message: raft.description, hint: "slow down and retry")
            default:
                return APIError(status: 500, code: "internal", message: raft.description, hint: "check the manager's log")
            }
        case .rejected(let rejected): return from(rejected)
        case .proposalLost:
            return APIError(status: 503, code: "proposal_lost", message: error.description, hint: "read the object again: the write may or may not have taken effect")
        case .readInterrupted:
            return APIError(status: 503, code: "read_interrupted", message: error.description, hint: "retry")
        case .timedOut:
            return APIError(status: 503, code: "no_quorum", message: error.description,
                            hint: "the managers may have lost their quorum: `shoal cluster inspect`; read with ?stale=true meanwhile")
        case .stopped:
            return APIError(status: 503, code: "stopping", message: error.description, hint: "retry against another manager")
        case .storageFailed:
            return APIError(status: 500, code: "storage_failed", message: error.description, hint: "check the disk, then restart the daemon")
        }
    }

    static func from(_ error: ClusterStateError) -> APIError {
        switch error {
        case .notFound(let kind, let id):
            return APIError(status: 404, code: "not_found", message: "\(kind) \(id) not found", hint: "list them with `shoal \(kind) ls`")
        case .alreadyExists:
            return APIError(status: 409, code: "already_exists", message: error.description, hint: "use another id")
        case .nameInUse:
            return APIError(status: 409, code: "name_in_use", message: error.description, hint: "pick another name or remove the other object first")
        case .versionConflict:
            return APIError(status: 409, code: "version_conflict", message: error.description, hint: "read the object again and retry with its current version")
        case .invalidSpec(let field, let reason):
            return APIError(status: 400, code: "invalid_argument", message: "invalid \(field): \(reason)", hint: "fix the field and retry; nothing was written")
        case .invalidTransition, .inUse:
            return APIError(status: 409, code: "failed_precondition", message: error.description, hint: "")
        case .undecodableCommand:
            return APIError(status: 500, code: "internal", message: error.description, hint: "run the same shoal version on every manager")
        }
    }
}

/// What can stop the agent from running a task; the message is what
/// `shoal service ps` shows in the ERROR column.
public enum AgentError: Error, Sendable, Equatable, CustomStringConvertible {
    case imageNotFound(String)
    case imageUnusable(String, String)
    case pullFailed(reference: String, registry: String, reason: String)
    case invalidTask(String)
    case runtime(String)

    public var description: String {
        switch self {
        case .imageNotFound(let reference):
            return "image not found locally: import it with `shoal image import ROOTFS.tar \(reference)`, or push it to a registry and name the registry in the image (`shoal image push \(reference) 127.0.0.1:5000/NAME:TAG`)"
        case let .pullFailed(reference, registry, reason):
            return "pulling \(reference) from \(registry) failed: \(reason); check that \(registry) runs (`shoal dev` serves one on 127.0.0.1:5000) and holds it (`shoal image push LOCAL-IMAGE \(reference)`); the restart policy tries again"
        case .imageUnusable(let reference, let reason):
            return "image \(reference) cannot be used: \(reason)"
        case .invalidTask(let reason):
            return reason
        case .runtime(let reason):
            return reason
        }
    }
}

/// What can stop the agent from running a task; the message is what
/// `shoal service ps` shows in the ERROR column.
public enum AgentError: Error, Sendable, Equatable, CustomStringConvertible {
    case imageNotFound(String)
    case imageUnusable(String, String)
    case invalidTask(String)
    case runtime(String)

    public var description: String {
        switch self {
        case .imageNotFound(let reference):
            return "image not found locally: import it with `shoal image import ROOTFS.tar \(reference)` (registry pulls are not built yet)"
        case .imageUnusable(let reference, let reason):
            return "image \(reference) cannot be used: \(reason)"
        case .invalidTask(let reason):
            return reason
        case .runtime(let reason):
            return reason
        }
    }
}

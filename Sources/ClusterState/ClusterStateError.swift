/// Why `apply` refused a command. A refused command changes nothing.
public enum ClusterStateError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(kind: ObjectKind, id: ObjectID)
    case alreadyExists(kind: ObjectKind, id: ObjectID)
    case nameInUse(kind: ObjectKind, name: String, id: ObjectID)
    /// Compare-and-set failed: someone else wrote the object since `expected`.
    case versionConflict(kind: ObjectKind, id: ObjectID, expected: UInt64, actual: UInt64)
    case invalidSpec(field: String, reason: String)
    /// Observed task state only moves forward.
    case invalidTransition(taskID: ObjectID, from: ServiceTask.State, to: ServiceTask.State)
    /// The object is still used by another (a network by services, ...).
    case inUse(kind: ObjectKind, id: ObjectID, by: String)
    /// Command bytes that do not decode (a proposer from a newer version, or corruption).
    case undecodableCommand(String)

    public var description: String {
        switch self {
        case .notFound(let kind, let id):
            return "\(kind) \(id) not found; list them with `shoal \(kind) ls`"
        case .alreadyExists(let kind, let id):
            return "\(kind) \(id) already exists"
        case .nameInUse(let kind, let name, let id):
            return "\(kind) name '\(name)' is already used by \(id); pick another name or remove that \(kind) first"
        case .versionConflict(let kind, let id, let expected, let actual):
            return "\(kind) \(id) changed since version \(expected) (now \(actual)); read it again and retry the update"
        case .invalidSpec(let field, let reason):
            return "invalid \(field): \(reason)"
        case .invalidTransition(let taskID, let from, let to):
            return "task \(taskID) cannot go from \(from) back to \(to); task state only moves forward"
        case .inUse(let kind, let id, let by):
            return "\(kind) \(id) is still used by \(by); remove that first"
        case .undecodableCommand(let detail):
            return "a replicated command could not be decoded (\(detail)); all managers must run the same shoal version"
        }
    }
}

/// The kinds of stored objects.
public enum ObjectKind: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case node, service, task, secret, config, network, route, rollout
    public var description: String { rawValue }
}

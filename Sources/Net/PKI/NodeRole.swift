/// What a node may do in the cluster; carried as the OU of its certificate.
public enum NodeRole: String, Sendable, CaseIterable, Codable {
    /// Runs Raft, holds the CA, serves the control API.
    case manager
    /// Runs tasks assigned by managers.
    case worker
}

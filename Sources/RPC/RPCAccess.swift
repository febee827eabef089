import Net

/// Who may call a method, checked against the caller's certificate before the
/// handler runs.
public struct RPCAccess: Sendable, Equatable, CustomStringConvertible {
    /// Roles whose certificates may call the method.
    public var roles: Set<NodeRole>
    /// Whether a caller without a certificate may call it. Only the join
    /// endpoint serves such methods: its handler must authenticate the caller
    /// itself (with a join token's secret).
    public var allowsAnonymous: Bool

    public init(roles: Set<NodeRole>, allowsAnonymous: Bool = false) {
        self.roles = roles
        self.allowsAnonymous = allowsAnonymous
    }

    /// Manager certificates only (Raft, control API, CA operations).
    public static let managers = RPCAccess(roles: [.manager])
    /// Worker certificates only.
    public static let workers = RPCAccess(roles: [.worker])
    /// Any node of the cluster (managers and workers).
    public static let anyNode = RPCAccess(roles: [.manager, .worker])
    /// Anyone who completed the TLS handshake, with or without a certificate:
    /// the join endpoint.
    public static let anonymous = RPCAccess(roles: [.manager, .worker], allowsAnonymous: true)

    /// Whether a caller with `identity` (nil: no certificate) may call.
    public func permits(_ identity: NodeIdentity?) -> Bool {
        guard let identity else { return allowsAnonymous }
        return roles.contains(identity.role)
    }

    public var description: String {
        let names = NodeRole.allCases.filter(roles.contains).map { "a \($0.rawValue) certificate" }
        var text = names.isEmpty ? "no role" : names.joined(separator: " or ")
        if allowsAnonymous { text += " (or none)" }
        return text
    }
}

/// Who a verified peer is, read from its certificate's subject: CN = node id,
/// OU = role, O = cluster id. Never derived from an address or hostname.
public struct NodeIdentity: Hashable, Sendable, CustomStringConvertible {
    public let nodeID: String
    public let role: NodeRole
    public let clusterID: String

    public init(nodeID: String, role: NodeRole, clusterID: String) {
        self.nodeID = nodeID
        self.role = role
        self.clusterID = clusterID
    }

    /// The identity in a subject, or nil when the subject is not a Shoal node's
    /// (no CN, an OU that is not a role, or no O).
    public init?(subject: DistinguishedName) {
        guard let nodeID = subject.commonName,
              let role = subject.organizationalUnit.flatMap(NodeRole.init(rawValue:)),
              let clusterID = subject.organization
        else { return nil }
        self.init(nodeID: nodeID, role: role, clusterID: clusterID)
    }

    public var description: String { "\(role) \(nodeID) of cluster \(clusterID)" }
}

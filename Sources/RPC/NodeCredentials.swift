import Net

/// A node's certificate, its private key and the cluster root that issued it.
public struct NodeCredentials: Sendable {
    public let certificate: Certificate
    public let key: PrivateKey
    public let root: Certificate

    public init(certificate: Certificate, key: PrivateKey, root: Certificate) {
        self.certificate = certificate
        self.key = key
        self.root = root
    }

    /// Who the certificate says this node is.
    public var identity: NodeIdentity? { certificate.nodeIdentity }

    /// The usual mutual-TLS configuration for these credentials.
    public var tlsConfiguration: TLSConfiguration {
        .node(certificate: certificate, key: key, root: root)
    }
}

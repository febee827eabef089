/// What a ``TLSContext`` needs: our certificate and key, the roots we trust,
/// and the protocol versions.
///
/// Peers are always verified against `trustedRoots` (mutual authentication is
/// mandatory on both sides, except at the join endpoint) and identified by
/// their certificate's subject; hostnames are never checked.
public struct TLSConfiguration: Sendable {
    /// Our certificate, leaf first (a node certificate issued by the root).
    /// Empty only for a client that has none yet; servers refuse such clients.
    public var certificateChain: [Certificate]
    public var privateKey: PrivateKey?
    /// The cluster's root CA (and, during a CA rotation, the next one).
    public var trustedRoots: [Certificate]
    /// Server only: whether clients must present a certificate.
    public var clientCertificates: ClientCertificatePolicy = .required
    /// Client only, for joining: trust no configured root; accept the server
    /// only if the chain it presents holds a CA certificate whose SHA-256 (of
    /// the DER) is this digest from a join token, and its leaf verifies
    /// against that CA. Checked right after the handshake, before a single
    /// byte of application data (the token's secret) is sent.
    public var pinnedRootDigest: String?
    public var minimumVersion: TLSVersion = .tls12
    public var maximumVersion: TLSVersion = .tls13
    /// Longest chain accepted from a peer: leaf + root.
    public static let maxVerifyDepth: Int32 = 2

    public init(certificateChain: [Certificate], privateKey: PrivateKey?, trustedRoots: [Certificate]) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.trustedRoots = trustedRoots
    }

    /// The usual node configuration: our node certificate and key, the cluster
    /// root. The root is also sent in our chain so that a joining node can pin
    /// it by the digest in its join token.
    public static func node(certificate: Certificate, key: PrivateKey, root: Certificate) -> TLSConfiguration {
        TLSConfiguration(certificateChain: [certificate, root], privateKey: key, trustedRoots: [root])
    }

    /// A joining node's client configuration: no certificate yet, and trust
    /// only a server whose CA matches the token's digest.
    public static func joining(with token: JoinToken) -> TLSConfiguration {
        var configuration = TLSConfiguration(certificateChain: [], privateKey: nil, trustedRoots: [])
        configuration.pinnedRootDigest = token.rootDigest
        return configuration
    }

    /// Whether a server demands client certificates.
    public enum ClientCertificatePolicy: Sendable {
        /// Mutual TLS: every connection between nodes.
        case required
        /// The join endpoint only: a node without a certificate yet may
        /// connect and prove a join token's secret; a presented certificate
        /// is still verified.
        case optional
    }
}

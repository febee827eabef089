/// What a ``TLSContext`` needs: our certificate and key, the roots we trust,
/// and the protocol versions.
///
/// Peers are always verified against `trustedRoots` (mutual authentication is
/// mandatory on both sides) and identified by their certificate's subject;
/// hostnames are never checked.
public struct TLSConfiguration: Sendable {
    /// Our certificate, leaf first (a node certificate issued by the root).
    /// Empty only for a client that has none yet; servers refuse such clients.
    public var certificateChain: [Certificate]
    public var privateKey: PrivateKey?
    /// The cluster's root CA (and, during a CA rotation, the next one).
    public var trustedRoots: [Certificate]
    public var minimumVersion: TLSVersion = .tls12
    public var maximumVersion: TLSVersion = .tls13
    /// Longest chain accepted from a peer: leaf + root.
    public static let maxVerifyDepth: Int32 = 2

    public init(certificateChain: [Certificate], privateKey: PrivateKey?, trustedRoots: [Certificate]) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.trustedRoots = trustedRoots
    }

    /// The usual node configuration: our node certificate and key, the cluster root.
    public static func node(certificate: Certificate, key: PrivateKey, root: Certificate) -> TLSConfiguration {
        TLSConfiguration(certificateChain: [certificate], privateKey: key, trustedRoots: [root])
    }
}

import Foundation
import Net

/// A manager's certificate service: issues node certificates from the
/// cluster CA to nodes that join with a valid token, and renews the
/// certificates of nodes already in the cluster.
///
/// - `join` (`joinMethod`) is served on the join endpoint, where callers have
///   no certificate yet (`RPCAccess.anonymous`): the caller proves the
///   secret of the current token for the role it asks for; a wrong, rotated
///   or other-role secret is refused with `permissionDenied` and nothing is
///   issued. The manager chooses the node id.
/// - `renewCertificate` (`renewMethod`) is served on the mutual-TLS endpoint
///   to managers and workers: the new certificate keeps the node id and role
///   of the caller's current one, whatever its CSR says.
public final class CertificateIssuer: @unchecked Sendable {
    public static let joinMethod = "shoal.pki.join"
    public static let renewMethod = "shoal.pki.renewCertificate"
    /// Characters of a node id the issuer chooses: 128 bits in base32.
    public static let nodeIDLength = 26

    public let authority: CertificateAuthority
    public let tokens: JoinTokenStore
    private let certificateLifetime: Duration
    private let now: @Sendable () -> Date
    private let makeNodeID: @Sendable () -> String
    private let lock = NSLock()
    private var tally = Counts() // guarded by `lock`

    /// What the issuer did, for metrics and tests.
    public struct Counts: Sendable, Equatable {
        public var joinsAccepted = 0
        public var joinsRefused = 0
        public var renewals = 0

        public init(joinsAccepted: Int = 0, joinsRefused: Int = 0, renewals: Int = 0) {
            self.joinsAccepted = joinsAccepted
            self.joinsRefused = joinsRefused
            self.renewals = renewals
        }
    }

    public init(
        authority: CertificateAuthority,
        tokens: JoinTokenStore,
        certificateLifetime: Duration = CertificateAuthority.defaultNodeCertificateLifetime,
        now: @escaping @Sendable () -> Date = { Date() },
        makeNodeID: @escaping @Sendable () -> String = CertificateIssuer.randomNodeID
    ) {
        self.authority = authority
        self.tokens = tokens
        self.certificateLifetime = certificateLifetime
        self.now = now
        self.makeNodeID = makeNodeID
    }

    public var counts: Counts { lock.withLock { tally } }

    /// A fresh random node id (lowercase base32, 128 bits).
    @Sendable public static func randomNodeID() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        var generator = SecureRandom()
        return String((0..<nodeIDLength).map { _ in alphabet.randomElement(using: &generator)! })
    }

    /// Serves `join` on the join endpoint's server.
    public func registerJoin(on server: RPCServer) {
        server.register(Self.joinMethod, access: .anonymous) { [self] request in try join(request) }
    }

    /// Serves `renewCertificate` on the mutual-TLS server.
    public func registerRenewal(on server: RPCServer) {
        server.register(Self.renewMethod, access: .anyNode) { [self] request in try renew(request) }
    }

    private func join(_ call: RPCRequest) throws -> [UInt8] {
        let request: JoinRequest
        do {
            request = try JoinRequest(wireBytes: call.payload)
        } catch {
            throw RPCError(.invalidArgument, method: call.method, message: "malformed join request: \(error)", hint: "use a Shoal of the same version as the manager")
        }
        guard tokens.verify(secret: request.secret, for: request.role) else {
            lock.withLock { tally.joinsRefused += 1 }
            throw RPCError(.permissionDenied, method: call.method,
                           message: "the join token was refused for role \(request.role.rawValue): it is wrong, was rotated, or belongs to the other role; no certificate was issued",
                           hint: "get the current token with `shoal join-token \(request.role.rawValue)` on a manager")
        }
        let certificate = try issue(call.method, csrPEM: request.certificateRequestPEM, nodeID: makeNodeID(), role: request.role)
        lock.withLock { tally.joinsAccepted += 1 }
        return certificate
    }

    private func renew(_ call: RPCRequest) throws -> [UInt8] {
        guard let caller = call.caller else {
            throw RPCError(.unauthenticated, method: call.method, message: "renewal needs the caller's current certificate", hint: "join the cluster instead")
        }
        let request: RenewalRequest
        do {
            request = try RenewalRequest(wireBytes: call.payload)
        } catch {
            throw RPCError(.invalidArgument, method: call.method, message: "malformed renewal request: \(error)", hint: "use a Shoal of the same version as the manager")
        }
        let certificate = try issue(call.method, csrPEM: request.certificateRequestPEM, nodeID: caller.nodeID, role: caller.role)
        lock.withLock { tally.renewals += 1 }
        return certificate
    }

    private func issue(_ method: String, csrPEM: String, nodeID: String, role: NodeRole) throws -> [UInt8] {
        let certificate: Certificate
        do {
            let csr = try CertificateSigningRequest(pemEncoded: csrPEM)
            certificate = try authority.issue(for: csr, nodeID: nodeID, role: role, now: now(), lifetime: certificateLifetime)
        } catch {
            throw RPCError(.invalidArgument, method: method, message: "cannot issue a certificate from this request: \(error)",
                           hint: "send a PEM CSR signed by the key it carries")
        }
        return CertificateResponse(certificatePEM: certificate.pemEncoded, rootPEM: authority.certificate.pemEncoded).wireEncoded()
    }
}

import Foundation
import Net

/// A node's side of joining a cluster: a fresh key, a CSR, and the join call
/// over a connection that trusts only the CA the join token pins.
public enum NodeJoiner {
    /// Joins the cluster of the manager at `address` as `role`.
    ///
    /// The connection pins the root CA by the token's digest: a server of
    /// another cluster is refused (`TLSError.pinnedRootMismatch`) before the
    /// secret leaves this node. The answer is checked before it is returned:
    /// the root is the pinned one, the certificate is signed by it, carries
    /// our new key, and names the role asked for.
    ///
    /// - Throws: `TLSError` (pinning, handshake), `RPCError`
    ///   (`permissionDenied` for a refused token), `CertificateExchangeError`.
    public static func join(
        address: SocketAddress,
        token: JoinToken,
        role: NodeRole,
        deadline: ContinuousClock.Instant? = nil,
        group: EventLoopGroup = .shared
    ) async throws -> NodeCredentials {
        let key = try PrivateKey.generateP256()
        // The CN is a placeholder: the manager chooses the node id.
        let csr = try CertificateSigningRequest.create(nodeID: "joining-node", key: key)
        let context = try TLSContext(.joining(with: token), side: .client)
        let connection = try await TLSConnection.connect(to: address, context: context, deadline: deadline, group: group)
        guard let pinned = connection.pinnedRoot else {
            connection.abort()
            preconditionFailure("a joining connection completed without a pinned root")
        }
        let client = RPCClient(connection: connection)
        let answer: [UInt8]
        do {
            let request = JoinRequest(role: role, secret: token.secret, certificateRequestPEM: csr.pemEncoded)
            answer = try await client.call(method: CertificateIssuer.joinMethod, payload: request.wireEncoded(), deadline: deadline)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
        let credentials = try CertificateRenewer.verify(answer, method: CertificateIssuer.joinMethod, key: key, trustedRoot: pinned)
        guard credentials.identity?.role == role else {
            throw CertificateExchangeError.invalidResponse(method: CertificateIssuer.joinMethod,
                                                           reason: "asked for role \(role.rawValue), got a certificate for \(credentials.certificate.subject)")
        }
        return credentials
    }
}

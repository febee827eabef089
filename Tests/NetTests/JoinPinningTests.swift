import Foundation
import Testing
@testable import Net

/// A joining node has no certificate and trusts nothing but the CA digest in
/// its join token: it must refuse a server of another CA before sending the
/// token's secret.
@Suite("Joining with a pinned CA", .timeLimit(.minutes(2)))
struct JoinPinningTests {
    /// The join endpoint: optional client certificates; reads one secret
    /// line and reports what it received (or that nothing came).
    private func joinServer(_ cluster: TestCluster, serving configuration: TLSConfiguration? = nil) throws -> (TCPListener, Task<(DistinguishedName?, [UInt8]), any Error>) {
        var server = try configuration ?? cluster.configuration(nodeID: "manager-1", role: .manager)
        server.clientCertificates = .optional
        let context = try TLSContext(server, side: .server)
        let listener = try TCPListener.bind(.loopbackIPv4())
        let task = Task {
            let connection = try await listener.accept(deadline: .now + .seconds(10))
            let tls = try await TLSConnection.handshake(over: connection, context: context, deadline: .now + .seconds(10))
            var received: [UInt8] = []
            do {
                while true {
                    let bytes = try await tls.read(deadline: .now + .seconds(10))
                    if bytes.isEmpty { break }
                    received += bytes
                }
            } catch {
                // A joining node that leaves without close_notify: keep what arrived.
            }
            tls.abort()
            return (tls.peerSubject, received)
        }
        return (listener, task)
    }

    @Test func rightTokenPinsTheRootAndTheSecretFlows() async throws {
        let cluster = try TestCluster(clusterID: "join-a")
        let token = JoinToken.generate(root: cluster.root)
        let (listener, server) = try joinServer(cluster)
        let client = try await TLSConnection.connect(
            to: listener.localAddress, context: TLSContext(.joining(with: token), side: .client), deadline: .now + .seconds(10)
        )
        #expect(client.pinnedRoot?.sha256Digest == cluster.root.sha256Digest)
        #expect(client.peerIdentity == NodeIdentity(nodeID: "manager-1", role: .manager, clusterID: "join-a"))
        try await client.write(Array(token.secret.utf8))
        try await client.close(deadline: .now + .seconds(5))
        let (peer, received) = try await server.value
        #expect(peer == nil, "a joining node has no certificate yet")
        #expect(received == Array(token.secret.utf8))
        listener.close()
    }

    @Test func tokenForAnotherCAIsRefusedBeforeTheSecretLeaves() async throws {
        let cluster = try TestCluster(clusterID: "join-a")
        let elsewhere = try TestCluster(clusterID: "join-b")
        let token = JoinToken.generate(root: elsewhere.root) // pins join-b's CA
        let (listener, server) = try joinServer(cluster)
        await #expect {
            let client = try await TLSConnection.connect(
                to: listener.localAddress, context: TLSContext(.joining(with: token), side: .client), deadline: .now + .seconds(10)
            )
            try await client.write(Array(token.secret.utf8)) // must never be reached
        } throws: { error in
            guard case TLSError.pinnedRootMismatch(let expected, let presented) = error else { return false }
            return expected == elsewhere.root.sha256Digest && presented == [cluster.root.sha256Digest]
        }
        let (_, received) = try await server.value
        #expect(received.isEmpty, "the server received \(received.count) bytes from a node that should have left")
        listener.close()
    }

    @Test func serverThatHidesItsRootIsRefused() async throws {
        let cluster = try TestCluster()
        let token = JoinToken.generate(root: cluster.root)
        var leafOnly = try cluster.configuration(nodeID: "manager-1", role: .manager)
        leafOnly.certificateChain = Array(leafOnly.certificateChain.prefix(1))
        let (listener, server) = try joinServer(cluster, serving: leafOnly)
        await #expect {
            _ = try await TLSConnection.connect(
                to: listener.localAddress, context: TLSContext(.joining(with: token), side: .client), deadline: .now + .seconds(10)
            )
        } throws: { error in
            if case TLSError.pinnedRootMismatch(_, let presented) = error { return presented.isEmpty }
            return false
        }
        _ = try? await server.value
        listener.close()
    }

    @Test func joinEndpointStillVerifiesACertificateThatIsPresented() async throws {
        let cluster = try TestCluster()
        let intruder = try TestCluster()
        var foreign = try intruder.configuration(nodeID: "worker-x", role: .worker)
        foreign.trustedRoots = [cluster.root]
        let (listener, server) = try joinServer(cluster)
        do {
            let client = try await TLSConnection.connect(to: listener.localAddress, context: TLSContext(foreign, side: .client), deadline: .now + .seconds(10))
            try await client.write([1])
            _ = try await client.read(deadline: .now + .seconds(5))
        } catch {
            // Refused, as expected; the server's side says why.
        }
        await #expect {
            _ = try await server.value
        } throws: { error in
            if case TLSError.peerCertificateRejected = error { return true }
            return false
        }
        listener.close()
    }
}

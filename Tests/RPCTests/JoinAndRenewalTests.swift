import struct Raft.SeededGenerator
import Foundation
import Net
import RPC
import Testing

/// Join tokens, the join call on the join endpoint, and certificate renewal,
/// with real TLS on 127.0.0.1.
@Suite("Joining and certificate renewal", .timeLimit(.minutes(2)))
struct JoinAndRenewalTests {
    let cluster: TestCluster
    let tokens: JoinTokenStore
    let issuer: CertificateIssuer

    init() throws {
        cluster = try TestCluster(clusterID: "cluster-join")
        tokens = JoinTokenStore(root: cluster.root)
        issuer = CertificateIssuer(authority: cluster.authority, tokens: tokens)
    }

    /// The join endpoint: a manager certificate, client certificates optional.
    private func joinEndpoint() throws -> TestServer {
        var configuration = try cluster.credentials(nodeID: "manager-1", role: .manager).tlsConfiguration
        configuration.clientCertificates = .optional
        let context = try TLSContext(configuration, side: .server)
        let server = RPCServer()
        issuer.registerJoin(on: server)
        return try TestServer(server, context: { context })
    }

    private func refusal(_ body: () async throws -> Void) async -> RPCError? {
        do {
            try await body()
            return nil
        } catch let error as RPCError {
            return error
        } catch {
            Issue.record("expected an RPCError, got \(error)")
            return nil
        }
    }

    @Test(arguments: NodeRole.allCases)
    func rightTokenYieldsAWorkingCertificateForTheRole(role: NodeRole) async throws {
        let endpoint = try joinEndpoint()
        let credentials = try await NodeJoiner.join(address: endpoint.address, token: tokens.token(for: role), role: role, deadline: .now + .seconds(10))
        let subject = credentials.certificate.subject
        #expect(subject.organizationalUnit == role.rawValue)
        #expect(subject.organization == "cluster-join")
        #expect(subject.commonName?.count == CertificateIssuer.nodeIDLength)
        #expect(credentials.identity == NodeIdentity(nodeID: subject.commonName!, role: role, clusterID: "cluster-join"))
        #expect(credentials.certificate.isSigned(by: cluster.root))
        #expect(credentials.root.sha256Digest == cluster.root.sha256Digest)
        #expect(issuer.counts == .init(joinsAccepted: 1, joinsRefused: 0, renewals: 0))

        // The certificate works for mutual TLS, with its role.
        let serverContext = try cluster.context(nodeID: "manager-1", role: .manager, side: .server)
        let rpc = RPCServer()
        rpc.register("whoami", access: .anyNode) { bytes($0.caller?.description ?? "nobody") }
        let main = try TestServer(rpc, context: { serverContext })
        let client = try await connect(main.address, TLSContext(credentials.tlsConfiguration, side: .client))
        #expect(text(try await client.call(method: "whoami", payload: [])) == "\(role.rawValue) \(subject.commonName!) of cluster cluster-join")
        await client.close()
        await main.stop()
        await endpoint.stop()
    }

    @Test func wrongTokenOtherRolesTokenAndRotatedTokenAreRefused() async throws {
        let endpoint = try joinEndpoint()
        let digest = cluster.root.sha256Digest
        let wrong = try JoinToken(rootDigest: digest, secret: String(repeating: "a", count: JoinToken.secretLength))
        let wrongError = await refusal {
            _ = try await NodeJoiner.join(address: endpoint.address, token: wrong, role: .worker, deadline: .now + .seconds(10))
        }
        #expect(wrongError?.code == .permissionDenied)
        #expect(wrongError?.message.contains("no certificate was issued") == true)

        // A worker token does not make a manager.
        let otherRole = await refusal {
            _ = try await NodeJoiner.join(address: endpoint.address, token: tokens.token(for: .worker), role: .manager, deadline: .now + .seconds(10))
        }
        #expect(otherRole?.code == .permissionDenied)

        // Rotation: the old token is refused, the new one admitted.
        let old = tokens.token(for: .worker)
        let fresh = tokens.rotate(.worker)
        #expect(fresh != old)
        let rotated = await refusal {
            _ = try await NodeJoiner.join(address: endpoint.address, token: old, role: .worker, deadline: .now + .seconds(10))
        }
        #expect(rotated?.code == .permissionDenied)
        #expect(issuer.counts == .init(joinsAccepted: 0, joinsRefused: 3, renewals: 0))
        let joined = try await NodeJoiner.join(address: endpoint.address, token: fresh, role: .worker, deadline: .now + .seconds(10))
        #expect(joined.identity?.role == .worker)
        #expect(tokens.token(for: .manager) != fresh, "rotating the worker token must not touch the manager token")
        await endpoint.stop()
    }

    @Test func tokenOfAnotherClusterIsRefusedBeforeTheSecretIsSent() async throws {
        let endpoint = try joinEndpoint()
        let elsewhere = try TestCluster(clusterID: "cluster-other")
        let foreign = JoinTokenStore(root: elsewhere.root).token(for: .worker)
        await #expect {
            _ = try await NodeJoiner.join(address: endpoint.address, token: foreign, role: .worker, deadline: .now + .seconds(10))
        } throws: { error in
            guard case TLSError.pinnedRootMismatch(let expected, let presented) = error else { return false }
            return expected == elsewhere.root.sha256Digest && presented == [cluster.root.sha256Digest]
        }
        // Not a single call reached the issuer: the secret never left.
        let endings = await endpoint.endings.wait(for: 1)
        #expect(issuer.counts == .init(joinsAccepted: 0, joinsRefused: 0, renewals: 0))
        #expect(endings.count == 1, "the refused joiner's connection did not end: \(endings)")
        await endpoint.stop()
    }

    @Test func callerWithoutCertificateReachesOnlyAnonymousMethods() async throws {
        var configuration = try cluster.credentials(nodeID: "manager-1", role: .manager).tlsConfiguration
        configuration.clientCertificates = .optional
        let context = try TLSContext(configuration, side: .server)
        let server = RPCServer()
        issuer.registerJoin(on: server)
        issuer.registerRenewal(on: server)
        server.register("raft.append", access: .managers) { _ in bytes("appended") }
        let endpoint = try TestServer(server, context: { context })
        let joining = try await connect(endpoint.address, TLSContext(.joining(with: tokens.token(for: .worker)), side: .client))
        for method in [CertificateIssuer.renewMethod, "raft.append"] {
            do {
                _ = try await joining.call(method: method, payload: [])
                Issue.record("a caller without a certificate called \(method)")
            } catch let error as RPCError {
                #expect(error.code == .unauthenticated, "\(method): \(error)")
                #expect(error.message.contains(method))
            }
        }
        #expect(issuer.counts == .init())
        await joining.close()
        await endpoint.stop()
    }

    @Test func tokenStoreComparesOnlyWellFormedCurrentSecretsOfTheRole() {
        let worker = tokens.token(for: .worker)
        #expect(tokens.verify(secret: worker.secret, for: .worker))
        #expect(!tokens.verify(secret: worker.secret, for: .manager))
        #expect(!tokens.verify(secret: "", for: .worker))
        #expect(!tokens.verify(secret: worker.secret + "a", for: .worker))
        #expect(!tokens.verify(secret: String(worker.secret.dropLast()) + (worker.secret.last == "a" ? "b" : "a"), for: .worker))
        tokens.rotate(.worker)
        #expect(!tokens.verify(secret: worker.secret, for: .worker))
    }

    @Test func renewalSwapsTheCertificateAndKeepsExistingConnections() async throws {
        let start = Date()
        let clock = ManualClock(start)
        // Node credentials valid for 10 days from `start`.
        let first = try cluster.credentials(nodeID: "worker-7", role: .worker, now: start, lifetime: .seconds(10 * 86_400))
        let store = try CredentialStore(first)
        let renewer = CertificateRenewer(store: store, clock: clock, generator: SeededGenerator(seed: 7))
        let lifetime = first.certificate.notAfter.timeIntervalSince(first.certificate.notBefore)
        let fraction = renewer.renewalTime.timeIntervalSince(first.certificate.notBefore) / lifetime
        #expect(fraction >= RenewalSchedule.earliestFraction && fraction <= RenewalSchedule.latestFraction)
        #expect(CertificateRenewer(store: store, clock: clock, generator: SeededGenerator(seed: 7)).renewalTime == renewer.renewalTime,
                "the same seed must give the same renewal time")

        let serverContext = try cluster.context(nodeID: "manager-1", role: .manager, side: .server)
        let rpc = RPCServer()
        issuer.registerRenewal(on: rpc)
        rpc.register("whoami", access: .anyNode) { bytes($0.caller?.nodeID ?? "nobody") }
        let server = try TestServer(rpc, context: { serverContext })
        let existing = try await connect(server.address, store.clientContext)

        // Not due yet: nothing happens.
        #expect(try await renewer.renewIfDue(using: existing) == false)
        #expect(store.current.certificate.serialNumberHex == first.certificate.serialNumberHex)

        // Due: renewed over the authenticated connection, swapped in.
        clock.set(renewer.renewalTime.addingTimeInterval(1))
        #expect(try await renewer.renewIfDue(using: existing, deadline: .now + .seconds(10)))
        let renewed = store.current
        #expect(renewed.certificate.serialNumberHex != first.certificate.serialNumberHex)
        #expect(renewed.identity == first.identity, "renewal keeps node id and role")
        #expect(!renewed.certificate.matches(first.key), "a renewed certificate carries a fresh key")
        #expect(renewer.renewalTime > renewed.certificate.notBefore)
        #expect(issuer.counts.renewals == 1)

        // The connection made with the old certificate is still up...
        #expect(text(try await existing.call(method: "whoami", payload: [])) == "worker-7")
        // ...and new connections present the renewed certificate.
        let fresh = try await connect(server.address, store.clientContext)
        #expect(text(try await fresh.call(method: "whoami", payload: [])) == "worker-7")
        let serials = await server.clientSerials.wait(for: 2)
        #expect(serials == [first.certificate.serialNumberHex, renewed.certificate.serialNumberHex])
        await existing.close()
        await fresh.close()
        await server.stop()
    }

    @Test func renewalLoopRenewsWhenTheClockReachesTheRenewalTime() async throws {
        let start = Date()
        let clock = ManualClock(start)
        let first = try cluster.credentials(nodeID: "manager-3", role: .manager, now: start, lifetime: .seconds(86_400))
        let store = try CredentialStore(first)
        let renewer = CertificateRenewer(store: store, clock: clock, generator: SeededGenerator(seed: 1))
        let serverContext = try cluster.context(nodeID: "manager-1", role: .manager, side: .server)
        let rpc = RPCServer()
        issuer.registerRenewal(on: rpc)
        let server = try TestServer(rpc, context: { serverContext })
        let address = server.address
        let loop = Task { await renewer.run { try await connect(address, store.clientContext) } }
        try await Task.sleep(for: .milliseconds(100))
        #expect(issuer.counts.renewals == 0, "renewed before the renewal time")
        clock.set(renewer.renewalTime)
        let deadline = ContinuousClock.now + .seconds(10)
        while store.current.certificate.serialNumberHex == first.certificate.serialNumberHex && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(issuer.counts.renewals == 1)
        #expect(store.current.certificate.serialNumberHex != first.certificate.serialNumberHex)
        loop.cancel()
        await loop.value
        await server.stop()
    }
}

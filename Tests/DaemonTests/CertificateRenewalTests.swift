import Daemon
import Foundation
import Net
import RPC
import Testing

/// Issue 3: node certificates are renewed automatically at 50–80% of their
/// lifetime without dropping connections. Real daemons, real clock, and
/// certificates that live 8 seconds, so the test outlives the first ones.
@Suite("Certificate renewal", .serialized, .timeLimit(.minutes(2)))
struct CertificateRenewalTests {
    static let lifetime: Duration = .seconds(8)

    /// certs/ of one daemon.
    struct CertificateFiles {
        let directory: String
        var certificatePath: String { directory + "/certs/node.crt" }
        var keyPath: String { directory + "/certs/node.key" }
        func certificate() throws -> Certificate { try Certificate.read(fromFile: certificatePath) }
        func key() throws -> PrivateKey { try PrivateKey.read(fromFile: keyPath) }
        func keyMode() throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? NSNumber)?.intValue ?? -1
        }
        func credentials() throws -> NodeCredentials {
            NodeCredentials(certificate: try certificate(), key: try key(), root: try Certificate.read(fromFile: directory + "/certs/ca.crt"))
        }
    }

    private func address(_ text: String) throws -> SocketAddress {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw TestFailure("not HOST:PORT: \(text)")
        }
        return .ipv4(String(text[..<colon]), port: port)
    }

    /// A manager answers on this connection: an empty renewal request is refused as malformed.
    private func expectAnswers(_ client: RPCClient, _ what: String) async {
        do {
            _ = try await client.call(method: CertificateIssuer.renewMethod, payload: [], deadline: .now + .seconds(5))
            Issue.record("\(what): an empty renewal request was accepted")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument, "\(what): \(error)")
        } catch {
            Issue.record("\(what): \(error)")
        }
    }

    @Test("a manager's and a worker's certificates are replaced before expiry; open and new connections keep working")
    func certificatesAreRenewedBeforeExpiry() async throws {
        try await TestCluster.with { cluster in
            cluster.nodeCertificateLifetime = Self.lifetime
            let initialized = try await cluster.initCluster("m1")
            let joined = try await cluster.join("w1", token: initialized.workerToken, address: initialized.advertiseAddress)
            #expect(joined.role == "worker")
            let manager = CertificateFiles(directory: "\(cluster.root)/m1")
            let worker = CertificateFiles(directory: "\(cluster.root)/w1")
            let firstManager = try manager.certificate()
            let firstWorker = try worker.credentials()

            // An observer with a long-lived certificate from the same CA opens
            // a connection to m1 before any renewal.
            let authority = try CertificateAuthority(certificate: try Certificate.read(fromFile: manager.directory + "/certs/ca.crt"),
                                                     key: try PrivateKey.read(fromFile: manager.directory + "/certs/ca.key"))
            let observer = try authority.issueNodeCredentials(nodeID: "observer", role: .worker, lifetime: .seconds(3600))
            let observerContext = try TLSContext(.node(certificate: observer.certificate, key: observer.key, root: authority.certificate), side: .client)
            let managerAddress = try address(initialized.advertiseAddress)
            let early = RPCClient(connection: try await TLSConnection.connect(to: managerAddress, context: observerContext, deadline: .now + .seconds(5)))
            await expectAnswers(early, "before renewal")

            for (name, files, first) in [("m1", manager, firstManager), ("w1", worker, firstWorker.certificate)] {
                let renewed = try await eventually("\(name)'s certificate to be renewed", timeout: .seconds(20)) {
                    let current = try files.certificate()
                    return current.serialNumberHex != first.serialNumberHex ? current : nil
                }
                #expect(Date() < first.notAfter, "\(name) renewed only after its certificate expired at \(first.notAfter)")
                #expect(renewed.notAfter > first.notAfter)
                #expect(renewed.nodeIdentity == first.nodeIdentity, "\(name) changed identity: \(renewed.subject)")
                #expect(renewed.isSigned(by: authority.certificate))
                #expect(renewed.matches(try files.key()), "\(name): certs/node.key does not match certs/node.crt")
                let mode = try files.keyMode()
                #expect(mode == 0o600, "\(name): certs/node.key has mode \(String(mode, radix: 8))")
            }

            // Wait until the first certificates have expired.
            let expiry = max(firstManager.notAfter, firstWorker.certificate.notAfter)
            try await Task.sleep(for: .milliseconds(Int(max(0, expiry.timeIntervalSinceNow) * 1000) + 1500))

            // The connection opened before renewal still serves.
            await expectAnswers(early, "after the first certificates expired")
            // A new connection is served with m1's renewed certificate.
            let lateConnection = try await TLSConnection.connect(to: managerAddress, context: observerContext, deadline: .now + .seconds(5))
            #expect(lateConnection.peerCertificate?.serialNumberHex != firstManager.serialNumberHex)
            #expect((lateConnection.peerCertificate?.notAfter ?? .distantPast) > Date())
            let late = RPCClient(connection: lateConnection)
            await expectAnswers(late, "a connection made after expiry")

            // The worker's first certificate is refused now; the one on disk is
            // accepted and can itself be renewed.
            let expiredContext = try TLSContext(firstWorker.tlsConfiguration, side: .client)
            var refused = false
            do {
                let stale = RPCClient(connection: try await TLSConnection.connect(to: managerAddress, context: expiredContext, deadline: .now + .seconds(5)))
                _ = try await stale.call(method: CertificateIssuer.renewMethod, payload: [], deadline: .now + .seconds(5))
                await stale.close()
            } catch let error as RPCError where error.code == .invalidArgument {
                refused = false
            } catch {
                refused = true
            }
            #expect(refused, "a connection with the expired first certificate was served: the test would not notice a missing renewal")
            let store = try CredentialStore(try worker.credentials())
            let current = RPCClient(connection: try await TLSConnection.connect(to: managerAddress, context: store.clientContext, deadline: .now + .seconds(5)))
            try await CertificateRenewer(store: store).renew(using: current, deadline: .now + .seconds(5))
            #expect(store.current.certificate.nodeIdentity == firstWorker.identity)

            // The worker restarts from its data directory with the renewed pair.
            await cluster.stop("w1")
            let restarted = try await cluster.start("w1")
            #expect(restarted.nodeID == firstWorker.identity?.nodeID)

            for client in [early, late, current] { await client.close() }
        }
    }
}

import ClusterState
import Foundation
import Manager
import Net
import Raft
import RPC
import Testing

@Suite("Managers over mutual TLS", .timeLimit(.minutes(2)))
struct RPCPeerTransportTests {
    /// Three managers, each with an RPC server on its own loopback port and
    /// an RPCPeerTransport to the others.
    final class TLSGroup: @unchecked Sendable {
        let authority: CertificateAuthority
        var members: [NodeID: ManagerRaft] = [:]
        var transports: [NodeID: RPCPeerTransport] = [:]
        var listeners: [NodeID: TCPListener] = [:]
        var serving: [NodeID: Task<Void, Never>] = [:]

        init(voters: [NodeID]) async throws {
            authority = try CertificateAuthority.createRoot(clusterID: "manager-tests")
            var contexts: [NodeID: (server: TLSContext, client: TLSContext)] = [:]
            for id in voters {
                let (certificate, key) = try authority.issueNodeCredentials(nodeID: "manager-\(id)", role: .manager, now: Date(), lifetime: .seconds(86_400))
                let credentials = NodeCredentials(certificate: certificate, key: key, root: authority.certificate)
                contexts[id] = (try TLSContext(credentials.tlsConfiguration, side: .server), try TLSContext(credentials.tlsConfiguration, side: .client))
                listeners[id] = try TCPListener.bind(.loopbackIPv4())
            }
            let addresses = listeners.mapValues(\.localAddress)
            for id in voters {
                let client = contexts[id]!.client
                let transport = RPCPeerTransport(addresses: addresses, context: { client })
                var configuration = ManagerRaft.Configuration(raft: RaftOptions(id: id, seed: id))
                configuration.tickInterval = .milliseconds(10)
                let member = try ManagerRaft(configuration: configuration, storage: MemoryRaftStorage(), transport: transport, bootstrapVoters: voters)
                let server = RPCServer()
                RPCPeerTransport.register(on: server, manager: member)
                let listener = listeners[id]!
                let serverContext = contexts[id]!.server
                serving[id] = Task { await server.serve(listener: listener, context: { serverContext }) }
                members[id] = member
                transports[id] = transport
                member.start()
            }
        }

        func stop(_ id: NodeID) async {
            members[id]?.stop()
            transports[id]?.stop()
            listeners[id]?.close()
            serving[id]?.cancel()
            await serving[id]?.value
            members[id] = nil
        }

        func stopAll() async {
            for id in members.keys.sorted() { await stop(id) }
        }

        func leader(excluding: NodeID? = nil) async throws -> ManagerRaft {
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline {
                if let leader = members.sorted(by: { $0.key < $1.key }).first(where: { $0.key != excluding && $0.value.status.role == .leader })?.value {
                    return leader
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw ManagerTestError("no leader over TLS within 15 s")
        }
    }

    @Test("three managers elect a leader over mutual TLS, replicate writes and survive the leader's loss")
    func replicateOverTLS() async throws {
        let group = try await TLSGroup(voters: [1, 2, 3])
        var leader = try await group.leader()
        for number in 0..<20 {
            _ = try await leader.propose(.createSecret(id: ObjectID("s\(number)")!, spec: .init(name: "s\(number)", data: [1])), timeMilliseconds: 0)
        }
        for id: NodeID in [1, 2, 3] {
            let count = try await group.members[id]!.read { $0.secrets.count }
            #expect(count == 20)
        }
        let old = leader.status.id
        await group.stop(old)
        leader = try await group.leader(excluding: old)
        _ = try await leader.propose(.createSecret(id: "after", spec: .init(name: "after", data: [2])), timeMilliseconds: 0)
        let names = try await leader.read { $0.secrets.map(\.spec.name) }
        #expect(names.count == 21)
        await group.stopAll()
    }

    /// Lines a transport or a server reported, from any thread.
    final class Reports: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func add(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }

        func wait(for count: Int) async -> [String] {
            let deadline = ContinuousClock.now + .seconds(15)
            while all.count < count && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
            return all
        }
    }

    @Test("managers of different versions refuse each other's Raft traffic, and say why")
    func mixedVersionsRefuseClearly() async throws {
        let authority = try CertificateAuthority.createRoot(clusterID: "mixed-versions")
        func credentials(_ id: String) throws -> NodeCredentials {
            let (certificate, key) = try authority.issueNodeCredentials(nodeID: id, role: .manager, now: Date(), lifetime: .seconds(86_400))
            return NodeCredentials(certificate: certificate, key: key, root: authority.certificate)
        }
        let current = try credentials("manager-1")
        let older = try credentials("manager-2")
        let currentServerContext = try TLSContext(current.tlsConfiguration, side: .server)
        let currentClientContext = try TLSContext(current.tlsConfiguration, side: .client)
        let olderServerContext = try TLSContext(older.tlsConfiguration, side: .server)
        let olderClientContext = try TLSContext(older.tlsConfiguration, side: .client)

        // An older manager sends its batches as shoal.raft.step calls: this one refuses them by name, and logs it once.
        let serverReports = Reports()
        let member = try ManagerRaft(configuration: .init(raft: RaftOptions(id: 1)), storage: MemoryRaftStorage(),
                                     transport: LocalPeerNetwork().transport(for: 1), bootstrapVoters: [1, 2])
        let server = RPCServer()
        RPCPeerTransport.register(on: server, manager: member, report: serverReports.add)
        let listener = try TCPListener.bind(.loopbackIPv4())
        let serving = Task { await server.serve(listener: listener, context: { currentServerContext }) }
        let olderClient = RPCClient(connection: try await TLSConnection.connect(to: listener.localAddress, context: olderClientContext, deadline: .now + .seconds(10)))
        for _ in 0..<2 {
            do {
                _ = try await olderClient.call(method: RPCPeerTransport.legacyStepMethod, payload: [0])
                Issue.record("a Raft batch sent as a call was taken")
            } catch let error as RPCError {
                #expect(error.code == .failedPrecondition)
                #expect(error.message.contains("manager manager-2 sends Raft messages as shoal.raft.step calls"), "\(error)")
                #expect(error.hint.contains("run the same version on every manager"), "\(error)")
            }
        }
        #expect(serverReports.all.count == 1, "\(serverReports.all)")
        #expect(serverReports.all.first?.contains("manager manager-2") == true)
        await olderClient.close()

        // This manager sends one-way messages to an older one, which takes only calls: the refusal is reported, once.
        let olderServer = RPCServer()
        olderServer.registerInline(RPCPeerTransport.legacyStepMethod, access: .managers) { _ in [] }
        let olderListener = try TCPListener.bind(.loopbackIPv4())
        let olderServing = Task { await olderServer.serve(listener: olderListener, context: { olderServerContext }) }
        let transportReports = Reports()
        let transport = RPCPeerTransport(addresses: [2: olderListener.localAddress], context: { currentClientContext }, report: transportReports.add)
        transport.send(Message(kind: .heartbeat, from: 1, to: 2, term: 1))
        let reported = await transportReports.wait(for: 1)
        #expect(reported.first?.hasPrefix("manager 2: refused our Raft messages: the server closed the connection: this server has no one-way method shoal.raft.messages") == true, "\(reported)")
        // It keeps retrying (with back-off), and does not repeat the same line.
        for _ in 0..<5 {
            transport.send(Message(kind: .heartbeat, from: 1, to: 2, term: 1))
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(transportReports.all.count == 1, "\(transportReports.all)")

        transport.stop()
        listener.close()
        olderListener.close()
        serving.cancel()
        olderServing.cancel()
        await serving.value
        await olderServing.value
    }
}

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
}

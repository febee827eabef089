import Foundation
import Testing
@testable import Net

/// A loopback mutual-TLS echo server for tests. Every handshake's outcome
/// (the verified peer subject, or the error) is published on `outcomes`.
final class TLSEchoServer: Sendable {
    let listener: TCPListener
    private let outcomes: OutcomeQueue
    private let acceptLoop: Task<Void, Never>

    convenience init(_ address: SocketAddress = .loopbackIPv4(), context: TLSContext, group: EventLoopGroup = .shared) throws {
        try self.init(address, group: group, contextProvider: { context })
    }

    /// `contextProvider` is asked for every new connection: replacing the
    /// context it returns (a renewed certificate) affects only new connections.
    init(_ address: SocketAddress = .loopbackIPv4(), group: EventLoopGroup = .shared, contextProvider: @escaping @Sendable () -> TLSContext) throws {
        let listener = try TCPListener.bind(address, group: group)
        let outcomes = OutcomeQueue()
        self.listener = listener
        self.outcomes = outcomes
        acceptLoop = Task {
            await withTaskGroup(of: Void.self) { connections in
                while true {
                    guard let connection = try? await listener.accept() else { break }
                    connections.addTask {
                        let tls: TLSConnection
                        do {
                            tls = try await TLSConnection.handshake(over: connection, context: contextProvider(), deadline: .now + .seconds(30))
                            await outcomes.add(.success(tls.peerSubject ?? DistinguishedName()))
                        } catch {
                            await outcomes.add(.failure(error))
                            return
                        }
                        do {
                            while true {
                                let bytes = try await tls.read(deadline: .now + .seconds(60))
                                if bytes.isEmpty { break }
                                try await tls.write(bytes)
                            }
                            try await tls.close(deadline: .now + .seconds(10))
                        } catch {
                            tls.abort()
                        }
                    }
                }
            }
        }
    }

    var address: SocketAddress { listener.localAddress }

    /// The next handshake outcome.
    func nextOutcome() async -> Result<DistinguishedName, any Error>? {
        await outcomes.next()
    }

    func stop() async {
        listener.close()
        await acceptLoop.value
    }
}

/// Handshake outcomes in arrival order, each taken once.
actor OutcomeQueue {
    private var ready: [Result<DistinguishedName, any Error>] = []
    private var waiter: CheckedContinuation<Result<DistinguishedName, any Error>, Never>?

    func add(_ outcome: Result<DistinguishedName, any Error>) {
        if let waiter {
            self.waiter = nil
            waiter.resume(returning: outcome)
        } else {
            ready.append(outcome)
        }
    }

    func next() async -> Result<DistinguishedName, any Error> {
        if !ready.isEmpty { return ready.removeFirst() }
        return await withCheckedContinuation { waiter = $0 }
    }
}

/// A cluster CA with ready-made node credentials.
struct TestCluster {
    let authority: CertificateAuthority
    var root: Certificate { authority.certificate }

    init(clusterID: String = "cluster-a") throws {
        authority = try CertificateAuthority.createRoot(clusterID: clusterID)
    }

    func configuration(nodeID: String, role: NodeRole, now: Date = Date(), lifetime: Duration = .seconds(86_400)) throws -> TLSConfiguration {
        let (certificate, key) = try authority.issueNodeCredentials(nodeID: nodeID, role: role, now: now, lifetime: lifetime)
        return .node(certificate: certificate, key: key, root: root)
    }

    func serverContext(nodeID: String = "manager-1") throws -> TLSContext {
        try TLSContext(configuration(nodeID: nodeID, role: .manager), side: .server)
    }

    func clientContext(nodeID: String = "worker-1", role: NodeRole = .worker) throws -> TLSContext {
        try TLSContext(configuration(nodeID: nodeID, role: role), side: .client)
    }
}

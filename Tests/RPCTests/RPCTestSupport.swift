import Foundation
import Net
import RPC
import Testing

/// A cluster CA with ready-made node credentials.
struct TestCluster {
    let authority: CertificateAuthority
    var root: Certificate { authority.certificate }
    var clusterID: String { authority.clusterID }

    init(clusterID: String = "rpc-cluster") throws {
        authority = try CertificateAuthority.createRoot(clusterID: clusterID)
    }

    func credentials(nodeID: String, role: NodeRole, now: Date = Date(), lifetime: Duration = .seconds(86_400)) throws -> NodeCredentials {
        let (certificate, key) = try authority.issueNodeCredentials(nodeID: nodeID, role: role, now: now, lifetime: lifetime)
        return NodeCredentials(certificate: certificate, key: key, root: root)
    }

    func context(nodeID: String, role: NodeRole, side: TLSContext.Side) throws -> TLSContext {
        try TLSContext(credentials(nodeID: nodeID, role: role).tlsConfiguration, side: side)
    }
}

/// An `RPCServer` on a loopback listener with mutual TLS. Records the serial
/// of every client certificate it accepts and how each connection ended.
final class TestServer: Sendable {
    let server: RPCServer
    let listener: TCPListener
    let endings = Recorder<String>()
    let clientSerials = Recorder<String>()
    private let serving: Task<Void, Never>

    init(_ server: RPCServer, context: @escaping @Sendable () -> TLSContext, address: SocketAddress = .loopbackIPv4()) throws {
        self.server = server
        let listener = try TCPListener.bind(address)
        self.listener = listener
        let endings = self.endings
        let clientSerials = self.clientSerials
        serving = Task {
            await withDiscardingTaskGroup { group in
                while let connection = try? await listener.accept() {
                    group.addTask {
                        do {
                            let tls = try await TLSConnection.handshake(over: connection, context: context(), deadline: .now + .seconds(10))
                            await clientSerials.add(tls.peerCertificate?.serialNumberHex ?? "none")
                            try await server.serve(tls)
                            await endings.add("closed")
                        } catch let error as RPCError {
                            await endings.add("\(error.code): \(error.message)")
                        } catch {
                            await endings.add("error: \(error)")
                        }
                    }
                }
            }
        }
    }

    var address: SocketAddress { listener.localAddress }

    func stop() async {
        listener.close()
        serving.cancel()
        await serving.value
    }
}

/// Values recorded from concurrent tasks, awaited in order.
actor Recorder<Value: Sendable> {
    private var values: [Value] = []
    private var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []

    func add(_ value: Value) {
        values.append(value)
        let ready = waiters.filter { $0.count <= values.count }
        waiters.removeAll { $0.count <= values.count }
        for waiter in ready { waiter.continuation.resume() }
    }

    var all: [Value] { values }

    /// Waits until `count` values were recorded, at most `timeout`; returns them.
    func wait(for count: Int, timeout: Duration = .seconds(10)) async -> [Value] {
        if values.count >= count { return values }
        let deadline = ContinuousClock.now + timeout
        while values.count < count && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return values
    }
}


/// A wall clock the test moves by hand.
final class ManualClock: RenewalClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date
    init(_ start: Date) { current = start }
    var now: Date { lock.withLock { current } }
    func set(_ date: Date) { lock.withLock { current = date } }
    func sleep(until date: Date) async throws {
        while now < date {
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// Opens an RPC client to `address` with `context`.
func connect(_ address: SocketAddress, _ context: TLSContext) async throws -> RPCClient {
    RPCClient(connection: try await TLSConnection.connect(to: address, context: context, deadline: .now + .seconds(10)))
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

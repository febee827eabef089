import Foundation
import Testing
@testable import Net

@Suite("Mutual TLS", .timeLimit(.minutes(2)))
struct TLSTests {
    @Test func mutualHandshakeIdentifiesBothPeersByCertificate() async throws {
        let cluster = try TestCluster(clusterID: "cluster-a")
        let server = try TLSEchoServer(context: cluster.serverContext(nodeID: "manager-1"))
        let client = try await TLSConnection.connect(to: server.address, context: cluster.clientContext(nodeID: "worker-7"), deadline: .now + .seconds(10))
        #expect(client.protocolVersion == "TLSv1.3")
        // AES-128-GCM, not OpenSSL's default AES-256-GCM: the bulk path's cipher.
        #expect(client.cipherSuite == "TLS_AES_128_GCM_SHA256")
        #expect(client.peerIdentity == NodeIdentity(nodeID: "manager-1", role: .manager, clusterID: "cluster-a"))
        #expect(client.peerSubject == DistinguishedName(commonName: "manager-1", organizationalUnit: "manager", organization: "cluster-a"))
        let seen = try #require(await server.nextOutcome()).get()
        #expect(seen == DistinguishedName(commonName: "worker-7", organizationalUnit: "worker", organization: "cluster-a"))

        try await client.write(Array("ping".utf8))
        #expect(try await client.read(deadline: .now + .seconds(5)) == Array("ping".utf8))
        let bulk = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        async let writing: Void = client.write(bulk, deadline: .now + .seconds(30))
        var echoed: [UInt8] = []
        while echoed.count < bulk.count {
            let chunk = try await client.read(maxBytes: 64 * 1024, deadline: .now + .seconds(30))
            try #require(!chunk.isEmpty)
            echoed += chunk
        }
        try await writing
        #expect(echoed == bulk)
        try await client.close(deadline: .now + .seconds(5))
        await server.stop()
    }

    @Test func tls12IsAcceptedAsTheMinimum() async throws {
        let cluster = try TestCluster()
        let server = try TLSEchoServer(context: cluster.serverContext())
        var configuration = try cluster.configuration(nodeID: "old-worker", role: .worker)
        configuration.maximumVersion = .tls12
        let client = try await TLSConnection.connect(to: server.address, context: TLSContext(configuration, side: .client), deadline: .now + .seconds(10))
        #expect(client.protocolVersion == "TLSv1.2")
        #expect(client.cipherSuite == "ECDHE-ECDSA-AES128-GCM-SHA256")
        try await client.write([42])
        #expect(try await client.read(deadline: .now + .seconds(5)) == [42])
        try await client.close()
        await server.stop()
    }

    /// Connects with `clientContext`, expects the server to refuse, and returns
    /// the server's error and the error the client saw (at handshake or first read).
    private func refusal(clientContext: TLSContext, serverContext: TLSContext) async throws -> (server: any Error, client: any Error) {
        let server = try TLSEchoServer(context: serverContext)
        defer { Task { await server.stop() } }
        var clientError: (any Error)?
        do {
            let client = try await TLSConnection.connect(to: server.address, context: clientContext, deadline: .now + .seconds(10))
            // TLS 1.3 clients finish before the server checks their certificate:
            // the refusal arrives as an alert on the first read.
            try await client.write([1])
            _ = try await client.read(deadline: .now + .seconds(10))
            client.abort()
        } catch {
            clientError = error
        }
        let outcome = try #require(await server.nextOutcome())
        guard case .failure(let serverError) = outcome else {
            Issue.record("server accepted a client it should refuse: \(outcome)")
            throw CancellationError()
        }
        return (serverError, try #require(clientError, "client was not told it was refused"))
    }

    @Test func clientWithoutCertificateIsRefused() async throws {
        let cluster = try TestCluster()
        let anonymous = try TLSContext(TLSConfiguration(certificateChain: [], privateKey: nil, trustedRoots: [cluster.root]), side: .client)
        let (serverError, clientError) = try await refusal(clientContext: anonymous, serverContext: cluster.serverContext())
        guard case TLSError.missingPeerCertificate = serverError else {
            Issue.record("server error: \(serverError)")
            return
        }
        #expect("\(serverError)".contains("presented no certificate"))
        guard case TLSError.refusedByPeer(let alert) = clientError else {
            Issue.record("client error: \(clientError)")
            return
        }
        #expect(alert.contains("certificate required"))
    }

    @Test func certificateFromAnotherCAIsRefused() async throws {
        let cluster = try TestCluster(clusterID: "cluster-a")
        let intruder = try TestCluster(clusterID: "cluster-b")
        // The intruder trusts cluster-a's root, so only the server's check stands between.
        var configuration = try intruder.configuration(nodeID: "worker-x", role: .worker)
        configuration.trustedRoots = [cluster.root]
        let (serverError, clientError) = try await refusal(
            clientContext: TLSContext(configuration, side: .client),
            serverContext: cluster.serverContext()
        )
        guard case TLSError.peerCertificateRejected(let reason) = serverError else {
            Issue.record("server error: \(serverError)")
            return
        }
        // Which of the two depends on whether the intruder also sent its root.
        #expect(reason.contains("self-signed certificate in certificate chain") || reason.contains("unable to get local issuer certificate"), "reason: \(reason)")
        #expect(clientError is TLSError)
    }

    @Test func expiredCertificateIsRefused() async throws {
        let cluster = try TestCluster()
        let longAgo = Date().addingTimeInterval(-100 * 86_400)
        let expired = try cluster.configuration(nodeID: "worker-old", role: .worker, now: longAgo, lifetime: .seconds(86_400))
        let (serverError, clientError) = try await refusal(
            clientContext: TLSContext(expired, side: .client),
            serverContext: cluster.serverContext()
        )
        guard case TLSError.peerCertificateRejected(let reason) = serverError else {
            Issue.record("server error: \(serverError)")
            return
        }
        #expect(reason.contains("expired"), "reason: \(reason)")
        guard case TLSError.refusedByPeer(let alert) = clientError else {
            Issue.record("client error: \(clientError)")
            return
        }
        #expect(alert.contains("expired"), "alert: \(alert)")
    }

    @Test func notYetValidCertificateIsRefused() async throws {
        let cluster = try TestCluster()
        let future = Date().addingTimeInterval(10 * 86_400)
        let early = try cluster.configuration(nodeID: "worker-early", role: .worker, now: future)
        let (serverError, _) = try await refusal(clientContext: TLSContext(early, side: .client), serverContext: cluster.serverContext())
        guard case TLSError.peerCertificateRejected(let reason) = serverError else {
            Issue.record("server error: \(serverError)")
            return
        }
        #expect(reason.contains("not yet valid"), "reason: \(reason)")
    }

    @Test func clientRefusesServerFromAnotherCluster() async throws {
        let cluster = try TestCluster(clusterID: "cluster-a")
        let impostor = try TestCluster(clusterID: "cluster-b")
        var serverConfiguration = try impostor.configuration(nodeID: "manager-x", role: .manager)
        serverConfiguration.trustedRoots = [cluster.root]
        let server = try TLSEchoServer(context: TLSContext(serverConfiguration, side: .server))
        await #expect {
            _ = try await TLSConnection.connect(to: server.address, context: cluster.clientContext(), deadline: .now + .seconds(10))
        } throws: { error in
            guard case TLSError.peerCertificateRejected(let reason) = error else { return false }
            return reason.contains("self-signed certificate in certificate chain") || reason.contains("unable to get local issuer certificate")
        }
        await server.stop()
    }

    @Test func handshakeTimesOutAgainstASilentPeer() async throws {
        let cluster = try TestCluster()
        let listener = try TCPListener.bind(.loopbackIPv4())
        async let silent = listener.accept(deadline: .now + .seconds(5))
        let started = ContinuousClock.now
        await #expect {
            _ = try await TLSConnection.connect(to: listener.localAddress, context: cluster.clientContext(), deadline: .now + .milliseconds(300))
        } throws: { error in
            if case NetError.timedOut = error { return true }
            return false
        }
        #expect(started.duration(to: .now) < .seconds(3))
        try await silent.abort()
        listener.close()
    }

    @Test func readDeadlineLeavesTLSConnectionUsable() async throws {
        let cluster = try TestCluster()
        let server = try TLSEchoServer(context: cluster.serverContext())
        let client = try await TLSConnection.connect(to: server.address, context: cluster.clientContext(), deadline: .now + .seconds(10))
        await #expect(throws: NetError.self) { _ = try await client.read(deadline: .now + .milliseconds(100)) }
        try await client.write(Array("still here".utf8))
        var echoed: [UInt8] = []
        while echoed.count < 10 { echoed += try await client.read(deadline: .now + .seconds(5)) }
        #expect(echoed == Array("still here".utf8))
        try await client.close()
        await server.stop()
    }

    @Test func renewedServerCertificateServesNewConnectionsWithoutDroppingOldOnes() async throws {
        let cluster = try TestCluster()
        let now = Date()
        let first = try cluster.authority.issueNodeCredentials(nodeID: "manager-1", role: .manager, now: now)
        let current = ContextBox(try TLSContext(.node(certificate: first.certificate, key: first.key, root: cluster.root), side: .server))
        let server = try TLSEchoServer(contextProvider: { current.value })
        let old = try await TLSConnection.connect(to: server.address, context: cluster.clientContext(), deadline: .now + .seconds(10))
        #expect(old.peerCertificate?.serialNumberHex == first.certificate.serialNumberHex)

        // Renewal: a new key and certificate, swapped in while `old` stays open.
        let renewed = try cluster.authority.issueNodeCredentials(nodeID: "manager-1", role: .manager, now: now)
        current.value = try TLSContext(.node(certificate: renewed.certificate, key: renewed.key, root: cluster.root), side: .server)
        let new = try await TLSConnection.connect(to: server.address, context: cluster.clientContext(), deadline: .now + .seconds(10))
        #expect(new.peerCertificate?.serialNumberHex == renewed.certificate.serialNumberHex)
        #expect(new.peerIdentity == old.peerIdentity)
        for connection in [old, new] {
            try await connection.write([7, 7])
            var echoed: [UInt8] = []
            while echoed.count < 2 { echoed += try await connection.read(deadline: .now + .seconds(5)) }
            #expect(echoed == [7, 7])
            try await connection.close()
        }
        await server.stop()
    }

    /// The bulk path as `shoal-bench net` runs it: each end on an event loop
    /// of its own (socket registered there, task preferring it as executor),
    /// 1 MiB writes, reads of up to 1 MiB. Every byte arrives, in order.
    @Test func oneWayBulkTransferWithEachEndOnItsOwnLoopArrivesIntact() async throws {
        let cluster = try TestCluster()
        let readerLoop = try EventLoopGroup(threadCount: 1)
        let writerLoop = try EventLoopGroup(threadCount: 1)
        defer {
            readerLoop.shutdown()
            writerLoop.shutdown()
        }
        let serverContext = try cluster.serverContext()
        let clientContext = try cluster.clientContext()
        let listener = try TCPListener.bind(.loopbackIPv4(), group: readerLoop)
        defer { listener.close() }
        let totalBytes = 8 << 20
        func pattern(_ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: index &* 7 &+ index >> 13) }
        let readerThread = await readerLoop.loops[0].currentThread()
        let reader = Task(executorPreference: readerLoop.loops[0]) { () throws -> (intact: Bool, count: Int, onLoop: Bool) in
            let tls = try await TLSConnection.handshake(over: listener.accept(deadline: .now + .seconds(10)), context: serverContext, deadline: .now + .seconds(10))
            var count = 0
            var intact = true
            while true {
                let chunk = try await tls.read(maxBytes: 1 << 20, deadline: .now + .seconds(30))
                if chunk.isEmpty { break }
                for (offset, byte) in chunk.enumerated() where byte != pattern(count + offset) { intact = false }
                count += chunk.count
            }
            let onLoop = pthread_equal(pthread_self(), readerThread) != 0
            try await tls.close(deadline: .now + .seconds(5))
            return (intact, count, onLoop)
        }
        let block = (0..<totalBytes).map(pattern)
        let writerOnLoop = try await withTaskExecutorPreference(writerLoop.loops[0]) {
            let client = try await TLSConnection.connect(to: listener.localAddress, context: clientContext, deadline: .now + .seconds(10), group: writerLoop)
            for start in stride(from: 0, to: totalBytes, by: 1 << 20) {
                try await client.write(Array(block[start..<start + (1 << 20)]), deadline: .now + .seconds(30))
            }
            let onLoop = pthread_equal(pthread_self(), await writerLoop.loops[0].currentThread()) != 0
            try await client.close(deadline: .now + .seconds(10))
            return onLoop
        }
        let received = try await reader.value
        #expect(received.count == totalBytes)
        #expect(received.intact)
        #expect(received.onLoop)
        #expect(writerOnLoop)
    }

    /// A TCP end without close_notify may be a truncation attack: a read says so
    /// instead of returning end of stream.
    @Test func tcpEndWithoutCloseNotifyIsUnexpectedEndOfStream() async throws {
        let cluster = try TestCluster()
        let serverContext = try cluster.serverContext()
        let listener = try TCPListener.bind(.loopbackIPv4())
        defer { listener.close() }
        let server = Task {
            let tls = try await TLSConnection.handshake(over: listener.accept(deadline: .now + .seconds(10)), context: serverContext, deadline: .now + .seconds(10))
            try await tls.write([1, 2, 3])
            try await tls.connection.shutdownWrite(deadline: .now + .seconds(5))
            return tls
        }
        let client = try await TLSConnection.connect(to: listener.localAddress, context: cluster.clientContext(), deadline: .now + .seconds(10))
        var received: [UInt8] = []
        let error = await #expect(throws: TLSError.self) {
            while true { received += try await client.read(deadline: .now + .seconds(10)) }
        }
        guard case .unexpectedEndOfStream = error else {
            Issue.record("expected unexpectedEndOfStream, got \(String(describing: error))")
            return
        }
        #expect(received == [1, 2, 3])
        client.abort()
        try await server.value.abort()
    }

    @Test func mutualTLSOverUnixSocket() async throws {
        let cluster = try TestCluster()
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try TLSEchoServer(.unix(path: directory + "/tls.sock"), context: cluster.serverContext())
        let client = try await TLSConnection.connect(to: server.address, context: cluster.clientContext(), deadline: .now + .seconds(10))
        try await client.write([1, 2, 3])
        var echoed: [UInt8] = []
        while echoed.count < 3 { echoed += try await client.read(deadline: .now + .seconds(5)) }
        #expect(echoed == [1, 2, 3])
        try await client.close()
        await server.stop()
    }
}

final class ContextBox: @unchecked Sendable {
    private let lock = NSLock()
    private var context: TLSContext
    init(_ context: TLSContext) { self.context = context }
    var value: TLSContext {
        get { lock.withLock { context } }
        set { lock.withLock { context = newValue } }
    }
}

extension EventLoop {
    /// The loop's thread, asked of the loop itself.
    func currentThread() async -> pthread_t {
        await withCheckedContinuation { continuation in execute { continuation.resume(returning: pthread_self()) } }
    }
}

import Foundation
import Testing
@testable import Net

/// Thousands of concurrent mutual-TLS connections on a fixed set of threads.
@Suite("Load", .serialized)
struct LoadTests {
    static let connectionCount = 2_000
    static let echoBytes = 64

    @Test(.timeLimit(.minutes(2)))
    func twoThousandConcurrentTLSConnectionsOnABoundedThreadPool() async throws {
        let descriptorLimit = try ResourceLimits.raiseOpenFileLimit(to: 3 * Self.connectionCount + 256)
        try #require(descriptorLimit >= 2 * Self.connectionCount + 64, "need \(2 * Self.connectionCount + 64) descriptors, hard limit allows \(descriptorLimit)")
        let threadsBefore = ProcessThreads.count()

        let group = try EventLoopGroup(threadCount: 2)
        defer { group.shutdown() }
        let cluster = try TestCluster(clusterID: "load")
        let serverContext = try cluster.serverContext()
        let clientContext = try cluster.clientContext()
        let server = try LoadServer(context: serverContext, group: group)

        let everyoneEchoed = Barrier(count: Self.connectionCount)
        // Opened once the peak is sampled: until then every client holds its
        // connection (closing at the first barrier raced the sample, which a
        // loaded CI run then took with every connection already closed).
        let sampled = Barrier(count: 1)
        let handshakes = Counter()
        let started = ContinuousClock.now
        let peak = PeakSample()

        try await withThrowingTaskGroup(of: Void.self) { clients in
            for index in 0..<Self.connectionCount {
                clients.addTask {
                    let deadline = ContinuousClock.now + .seconds(90)
                    let tls = try await TLSConnection.connect(to: server.address, context: clientContext, deadline: deadline, group: group)
                    handshakes.increment()
                    let message = (0..<Self.echoBytes).map { UInt8(truncatingIfNeeded: $0 &+ index) }
                    try await tls.write(message, deadline: deadline)
                    var echoed: [UInt8] = []
                    while echoed.count < message.count {
                        let chunk = try await tls.read(deadline: deadline)
                        guard !chunk.isEmpty else { break }
                        echoed += chunk
                    }
                    guard echoed == message else { throw TestFailure("connection \(index) echoed \(echoed.count) bytes that differ") }
                    // Hold the connection open until all of them are up at once.
                    await everyoneEchoed.arrive()
                    await sampled.wait()
                    try await tls.close(deadline: deadline)
                }
            }
            clients.addTask {
                await everyoneEchoed.wait()
                // Every client holds its connection here; the server's count of
                // them may trail its last echo by a moment on a loaded machine.
                let settle = ContinuousClock.now + .seconds(10)
                while server.liveConnections < Self.connectionCount && ContinuousClock.now < settle {
                    try await Task.sleep(for: .milliseconds(5))
                }
                peak.record(
                    elapsed: started.duration(to: .now),
                    serverConnections: server.liveConnections,
                    threads: ProcessThreads.count(),
                    loopThreads: ProcessThreads.count(named: "shoal-net-loop")
                )
                await sampled.arrive()
            }
            try await clients.waitForAll()
        }
        let total = started.duration(to: .now)
        await server.stop()

        let sample = try #require(peak.value)
        let seconds = Double(sample.elapsed.components.seconds) + Double(sample.elapsed.components.attoseconds) / 1e18
        let rate = Double(Self.connectionCount) / seconds
        print("""
            [load] \(Self.connectionCount) mutual-TLS connections open at once, each echoed \(Self.echoBytes) bytes
            [load] all handshakes + echoes in \(sample.elapsed) (\(Int(rate)) handshakes/s, client and server in one process); total with close \(total)
            [load] threads: \(threadsBefore) before, \(sample.threads) at peak (\(sample.loopThreads) event loop threads); server connections at peak: \(sample.serverConnections)
            """)
        #expect(handshakes.value == Self.connectionCount)
        #expect(sample.serverConnections == Self.connectionCount, "all connections were open at the same time on the server")
        #expect(server.failures == 0, "server-side failures: \(server.failures)")
        // No thread per connection: the process gains at most the group's loop
        // threads and a few runtime helpers while serving 2,000 connections.
        #expect(sample.threads <= threadsBefore + 8, "threads grew from \(threadsBefore) to \(sample.threads)")
        #expect(sample.threads < 64)
        #expect(sample.loopThreads <= 2 + EventLoopGroup.defaultThreadCount, "this test's group plus at most the shared one")
        // Everything closes by itself.
        #expect(server.liveConnections == 0)
    }

    @Test(.timeLimit(.minutes(2)))
    func echoThroughputOverOneConnection() async throws {
        let total = 64 * 1024 * 1024
        let chunk = [UInt8](repeating: 0x5a, count: 256 * 1024)
        // Plain TCP
        let plain = try EchoServer(.loopbackIPv4())
        let connection = try await Connection.connect(to: plain.address)
        let plainTime = try await ContinuousClock().measure {
            async let reading: Int = {
                var received = 0
                while received < total { received += try await connection.read(maxBytes: 256 * 1024).count }
                return received
            }()
            for _ in 0..<(total / chunk.count) { try await connection.write(chunk) }
            #expect(try await reading == total)
        }
        try await connection.close()
        await plain.stop()
        // Mutual TLS
        let cluster = try TestCluster()
        let server = try TLSEchoServer(context: cluster.serverContext())
        let tls = try await TLSConnection.connect(to: server.address, context: cluster.clientContext())
        let tlsTime = try await ContinuousClock().measure {
            async let reading: Int = {
                var received = 0
                while received < total { received += try await tls.read(maxBytes: 64 * 1024).count }
                return received
            }()
            for _ in 0..<(total / chunk.count) { try await tls.write(chunk) }
            #expect(try await reading == total)
        }
        try await tls.close()
        await server.stop()
        func mebibytesPerSecond(_ time: Duration) -> Int {
            let seconds = Double(time.components.seconds) + Double(time.components.attoseconds) / 1e18
            return Int(Double(total) / 1_048_576 / seconds)
        }
        print("[throughput] echo of 64 MiB over one loopback connection (both directions concurrently): TCP \(mebibytesPerSecond(plainTime)) MiB/s, mutual TLS 1.3 \(mebibytesPerSecond(tlsTime)) MiB/s")
    }
}

/// A TLS echo server that counts live connections (for the load test).
final class LoadServer: @unchecked Sendable {
    let listener: TCPListener
    private let lock = NSLock()
    private var live = 0
    private var failed = 0
    private var acceptLoop: Task<Void, Never>?

    init(context: TLSContext, group: EventLoopGroup) throws {
        listener = try TCPListener.bind(.loopbackIPv4(), group: group)
        acceptLoop = Task { [listener] in
            await withTaskGroup(of: Void.self) { connections in
                while let connection = try? await listener.accept() {
                    connections.addTask { await self.serve(connection, context: context) }
                }
            }
        }
    }

    private func serve(_ connection: Connection, context: TLSContext) async {
        do {
            let tls = try await TLSConnection.handshake(over: connection, context: context, deadline: .now + .seconds(90))
            lock.withLock { live += 1 }
            defer { lock.withLock { live -= 1 } }
            do {
                while true {
                    let bytes = try await tls.read(deadline: .now + .seconds(90))
                    if bytes.isEmpty { break }
                    try await tls.write(bytes)
                }
                try await tls.close(deadline: .now + .seconds(10))
            } catch {
                tls.abort()
                lock.withLock { failed += 1 }
            }
        } catch {
            lock.withLock { failed += 1 }
        }
    }

    var address: SocketAddress { listener.localAddress }
    var liveConnections: Int { lock.withLock { live } }
    var failures: Int { lock.withLock { failed } }

    func stop() async {
        listener.close()
        await acceptLoop?.value
    }
}

/// Suspends arrivals until `count` have arrived.
actor Barrier {
    private let count: Int
    private var arrived = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { self.count = count }

    func arrive() async {
        arrived += 1
        if arrived >= count {
            for continuation in waiting { continuation.resume() }
            waiting.removeAll()
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Waits without counting as an arrival.
    func wait() async {
        if arrived >= count { return }
        await withCheckedContinuation { waiting.append($0) }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var current = 0
    func increment() { lock.withLock { current += 1 } }
    var value: Int { lock.withLock { current } }
}

final class PeakSample: @unchecked Sendable {
    struct Value {
        let elapsed: Duration
        let serverConnections: Int
        let threads: Int
        let loopThreads: Int
    }
    private let lock = NSLock()
    private var sample: Value?
    func record(elapsed: Duration, serverConnections: Int, threads: Int, loopThreads: Int) {
        lock.withLock { sample = Value(elapsed: elapsed, serverConnections: serverConnections, threads: threads, loopThreads: loopThreads) }
    }
    var value: Value? { lock.withLock { sample } }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Threads of this process, from /proc.
enum ProcessThreads {
    static func count() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Threads:") }),
              let value = Int(line.dropFirst("Threads:".count).trimmingCharacters(in: .whitespaces))
        else { return -1 }
        return value
    }

    static func count(named prefix: String) -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.filter { task in
            let name = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
            return name.hasPrefix(prefix)
        }.count
    }
}

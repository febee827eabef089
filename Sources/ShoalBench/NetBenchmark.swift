import Foundation
import HTTP
import Net
import RPC

/// `shoal-bench net`: Shoal's transport on loopback. RPC round trips over
/// mutual TLS (1 and 64 calls in flight on one connection), bulk transfer on
/// one TLS connection (one direction), HTTP/1.1 keep-alive requests (1 and
/// 64 concurrent), and beside them this machine's `openssl speed` figure for
/// AES-128-GCM on 16 KiB blocks, the ceiling bulk TLS is compared with.
struct NetBenchmark {
    let options: NetBenchmarkOptions
    static let concurrencies = [1, 64]
    static let rpcMethod = "bench.echo"
    static let rpcPayloadBytes = 64
    /// Plaintext handed to `TLSConnection.write` per call in the bulk run.
    static let bulkWriteBytes = 1 << 20

    func run() async throws {
        let authority = try CertificateAuthority.createRoot(clusterID: "bench")
        let server = try authority.issueNodeCredentials(nodeID: "bench-manager", role: .manager)
        let client = try authority.issueNodeCredentials(nodeID: "bench-worker", role: .worker)
        let serverContext = try TLSContext(NodeCredentials(certificate: server.certificate, key: server.key, root: authority.certificate).tlsConfiguration, side: .server)
        let clientContext = try TLSContext(NodeCredentials(certificate: client.certificate, key: client.key, root: authority.certificate).tlsConfiguration, side: .client)

        if options.parts.contains("rpc") { try await runRPC(serverContext: serverContext, clientContext: clientContext) }
        var bulk: (rate: Double, efficiency: Double)?
        if options.parts.contains("bulk") { bulk = try await runBulk(serverContext: serverContext, clientContext: clientContext) }
        if options.parts.contains("http") { try await runHTTP() }
        guard let bulk else { return }
        let openssl = try OpenSSLSpeed.aes128GCMBytesPerSecond(seconds: options.opensslSeconds) / Double(1 << 20)
        report("net.openssl.aes128gcm.16k.throughput", openssl, "MiB/s")
        report("net.tls.bulk.fraction_of_openssl", bulk.rate / openssl, "ratio")
        // The ratio a machine with one free core per end would see: the
        // sender's and the receiver's halves of the CPU cost run in parallel.
        // On a shared, loaded machine this is the steadier measure.
        report("net.tls.bulk.fraction_of_openssl_per_core", 2 * bulk.efficiency / openssl, "ratio")
    }

    // MARK: RPC

    private func runRPC(serverContext: TLSContext, clientContext: TLSContext) async throws {
        let rpc = RPCServer()
        rpc.register(Self.rpcMethod, access: .anyNode) { $0.payload }
        let listener = try TCPListener.bind(.loopbackIPv4())
        let serving = Task { await rpc.serve(listener: listener, context: { serverContext }) }
        defer {
            listener.close()
            serving.cancel()
        }
        let payload = [UInt8](repeating: 0x5a, count: Self.rpcPayloadBytes)
        for inFlight in Self.concurrencies {
            let connection = try await TLSConnection.connect(to: listener.localAddress, context: clientContext, deadline: .now + .seconds(10))
            let client = RPCClient(connection: connection)
            // Warm up: the handshake's tail and the first allocations.
            for _ in 0..<100 { _ = try await client.call(method: Self.rpcMethod, payload: payload) }
            let end = MonotonicClock.nanoseconds + UInt64(options.durationSeconds * 1e9)
            let start = MonotonicClock.nanoseconds
            let recorders = try await withThrowingTaskGroup(of: LatencyRecorder.self) { group in
                for _ in 0..<inFlight {
                    group.addTask {
                        var latencies = LatencyRecorder(reserving: 1 << 16)
                        while MonotonicClock.nanoseconds < end {
                            let callStart = MonotonicClock.nanoseconds
                            _ = try await client.call(method: Self.rpcMethod, payload: payload)
                            latencies.record(MonotonicClock.nanoseconds - callStart)
                        }
                        return latencies
                    }
                }
                var all: [LatencyRecorder] = []
                for try await recorder in group { all.append(recorder) }
                return all
            }
            let seconds = Double(MonotonicClock.nanoseconds - start) / 1e9
            var merged = LatencyRecorder(reserving: 0)
            for recorder in recorders { merged.merge(recorder) }
            let name = "net.rpc.mtls.inflight\(inFlight)"
            report("\(name).throughput", Double(merged.count) / seconds, "calls/s")
            report("\(name).latency_p50", merged.percentileMicroseconds(0.5), "us")
            report("\(name).latency_p99", merged.percentileMicroseconds(0.99), "us")
            await client.close()
        }
    }

    // MARK: Bulk TLS

    /// One direction: the client writes, the server reads and counts. Ends
    /// after `bulkLimitBytes` or `durationSeconds`; the rate is the bytes the
    /// reader received over the time from the first write to the reader
    /// seeing close_notify. Returns MiB/s and MiB per CPU-second.
    ///
    /// The reader and the writer each run on an event loop of their own
    /// (their sockets registered there, their tasks preferring it as
    /// executor): one thread per end, so two cores work in parallel and no
    /// wakeup hops between threads.
    private func runBulk(serverContext: TLSContext, clientContext: TLSContext) async throws -> (rate: Double, efficiency: Double) {
        let readerLoop = try EventLoopGroup(threadCount: 1)
        let writerLoop = try EventLoopGroup(threadCount: 1)
        defer {
            readerLoop.shutdown()
            writerLoop.shutdown()
        }
        let listener = try TCPListener.bind(.loopbackIPv4(), group: readerLoop)
        defer { listener.close() }
        let reader = Task(executorPreference: readerLoop.loops[0]) { () throws -> (bytes: Int, endNanoseconds: UInt64) in
            let raw = try await listener.accept()
            let tls = try await TLSConnection.handshake(over: raw, context: serverContext, deadline: .now + .seconds(10))
            var received = 0
            while true {
                let chunk = try await tls.read(maxBytes: Self.bulkWriteBytes)
                if chunk.isEmpty { break }
                received += chunk.count
            }
            let end = MonotonicClock.nanoseconds
            try? await tls.close(deadline: .now + .seconds(1))
            return (received, end)
        }
        let (sent, start, cpuStart) = try await withTaskExecutorPreference(writerLoop.loops[0]) {
            let connection = try await TLSConnection.connect(to: listener.localAddress, context: clientContext, deadline: .now + .seconds(10), group: writerLoop)
            let block = [UInt8](repeating: 0xa5, count: Self.bulkWriteBytes)
            let cpuStart = Self.processCPUSeconds()
            let start = MonotonicClock.nanoseconds
            let stop = start + UInt64(options.durationSeconds * 1e9)
            var sent = 0
            while sent < options.bulkLimitBytes, MonotonicClock.nanoseconds < stop {
                try await connection.write(block)
                sent += block.count
            }
            try await connection.close(deadline: .now + .seconds(30))
            return (sent, start, cpuStart)
        }
        let (received, end) = try await reader.value
        let cpuSeconds = Self.processCPUSeconds() - cpuStart
        guard received == sent else {
            throw NetBenchmarkError(description: "bulk TLS: sent \(sent) bytes but the reader received \(received)")
        }
        let rate = Double(received) / Double(1 << 20) / (Double(end - start) / 1e9)
        report("net.tls.bulk.throughput", rate, "MiB/s")
        // The same transfer per CPU-second this process used (both ends, user
        // and kernel): what the transfer costs, whatever else the machine
        // runs. Each byte is encrypted once and decrypted once, so the most
        // this can be is half of openssl's single-core figure.
        let efficiency = Double(received) / Double(1 << 20) / max(cpuSeconds, 1e-9)
        report("net.tls.bulk.cpu_efficiency", efficiency, "MiB/cpu-s")
        return (rate, efficiency)
    }

    /// User plus system CPU time of this process so far.
    private static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    // MARK: HTTP

    private func runHTTP() async throws {
        let body = Array("hello from shoal\n".utf8)
        let server = HTTPServer { _ in HTTPServerResponse(status: .ok, body: .bytes(body)) }
        let address = try server.listen(on: .loopbackIPv4())
        guard let port = address.port else { throw NetBenchmarkError(description: "the HTTP listener has no port") }
        let url = try HTTPURL("http://127.0.0.1:\(port)/small")
        for concurrency in Self.concurrencies {
            var configuration = HTTPClient.Configuration()
            configuration.maxIdleConnectionsPerServer = concurrency
            let client = HTTPClient(configuration: configuration)
            for _ in 0..<100 { _ = try await get(client, url) }
            let start = MonotonicClock.nanoseconds
            let end = start + UInt64(options.durationSeconds * 1e9)
            let requests = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        var count = 0
                        while MonotonicClock.nanoseconds < end {
                            _ = try await get(client, url)
                            count += 1
                        }
                        return count
                    }
                }
                return try await group.reduce(0, +)
            }
            let seconds = Double(MonotonicClock.nanoseconds - start) / 1e9
            report("net.http.keepalive.concurrency\(concurrency).throughput", Double(requests) / seconds, "requests/s")
            report("net.http.keepalive.concurrency\(concurrency).connections", Double(client.connectionsOpened), "connections")
            await client.shutdown()
        }
        await server.shutdown(gracePeriod: .seconds(1))
    }

    private func get(_ client: HTTPClient, _ url: HTTPURL) async throws -> Int {
        let response = try await client.execute(HTTPClientRequest(url: url))
        let bytes = try await response.body.collect(upTo: 1 << 16)
        guard response.status == .ok else {
            throw NetBenchmarkError(description: "GET \(url) answered \(response.status)")
        }
        return bytes.count
    }

    private func report(_ name: String, _ value: Double, _ unit: String) {
        let formatted = value >= 100 ? String(format: "%.0f", value) : String(format: "%.3f", value)
        FileHandle.standardOutput.write(Data("\(name) \(formatted) \(unit)\n".utf8))
    }
}

struct NetBenchmarkError: Error, CustomStringConvertible {
    var description: String
}

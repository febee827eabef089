import Daemon
import Foundation
import HTTP
import Net
#if canImport(Glibc)
import Glibc
#endif

/// `shoal-bench cluster`: three Shoal managers (real `shoal daemon`
/// processes, mutual TLS, SQLite) against three etcd members (Debian's
/// etcd-server, TLS) on loopback, in the same run, with equal election
/// timeouts (1 s): API writes/s and latency for 1 and 64 concurrent clients,
/// and failover time from kill -9 of the leader to the first committed write.
struct ClusterBenchmark {
    var durationSeconds = 3.0
    /// Measure only this system ("shoal" or "etcd").
    var only: String?
    /// Measure only this concurrency, and no failover.
    var clients: Int?
    static let valueBytes = 256
    static let concurrencies = [1, 64]
    static let usage = "usage: shoal-bench cluster [--duration SECONDS] [--only shoal|etcd] [--clients N]"

    init(parsing arguments: [String]) throws {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { throw BenchmarkError(description: "\(flag) needs a value; \(Self.usage)") }
            switch flag {
            case "--duration":
                guard let seconds = Double(value), seconds > 0 else { throw BenchmarkError(description: "--duration takes positive seconds, got \(value)") }
                durationSeconds = seconds
            case "--only":
                guard ["shoal", "etcd"].contains(value) else { throw BenchmarkError(description: "--only takes shoal or etcd, got \(value)") }
                only = value
            case "--clients":
                guard let count = Int(value), count > 0 else { throw BenchmarkError(description: "--clients takes a positive count, got \(value)") }
                clients = count
            default:
                throw BenchmarkError(description: "unknown option \(flag); \(Self.usage)")
            }
        }
    }

    func run() async throws {
        var shoal: ShoalClusterTarget?
        if only != "etcd" { shoal = try await ShoalClusterTarget.start() }
        defer { shoal?.stop() }
        var etcd: EtcdClusterTarget?
        if only != "shoal" {
            do {
                etcd = try await EtcdClusterTarget.start()
            } catch {
                FileHandle.standardError.write(Data("shoal-bench cluster: etcd is not measured: \(error)\n".utf8))
            }
        }
        defer { etcd?.stop() }
        let targets: [ClusterTarget] = (shoal.map { [$0] } ?? []) + (etcd.map { [$0] } ?? [])

        var throughputs: [String: Double] = [:]
        for concurrency in clients.map({ [$0] }) ?? Self.concurrencies {
            for target in targets {
                if only != nil || clients != nil {
                    // For a profiler attached from outside (perf stat -p ...).
                    let pids = target.memberPIDs.map(String.init).joined(separator: " ")
                    FileHandle.standardError.write(Data("measuring \(target.name) with \(concurrency) clients for \(durationSeconds) s; members' pids: \(pids)\n".utf8))
                }
                let result = try await measureWrites(target, member: target.leaderHint, concurrency: concurrency)
                let name = "cluster.\(target.name).clients\(concurrency)"
                report("\(name).throughput", result.throughput, "writes/s")
                report("\(name).latency_p50", result.latencies.percentileMicroseconds(0.5) / 1000, "ms")
                report("\(name).latency_p99", result.latencies.percentileMicroseconds(0.99) / 1000, "ms")
                if result.errors > 0 { report("\(name).errors", Double(result.errors), "writes") }
                throughputs["\(target.name)\(concurrency)"] = result.throughput
            }
            if let ours = throughputs["shoal\(concurrency)"], let theirs = throughputs["etcd\(concurrency)"], theirs > 0 {
                report("cluster.clients\(concurrency).throughput_ratio_shoal_to_etcd", ours / theirs, "ratio")
            }
        }
        guard clients == nil else { return }
        var ourFailover: Double?
        if let shoal {
            let failover = try await measureFailover(shoal)
            report("cluster.shoal.failover", failover, "ms")
            ourFailover = failover
        }
        if let etcd {
            let theirFailover = try await measureFailover(etcd)
            report("cluster.etcd.failover", theirFailover, "ms")
            if let ourFailover { report("cluster.failover_ratio_shoal_to_etcd", ourFailover / theirFailover, "ratio") }
        }
    }

    struct WriteResult {
        var throughput: Double
        var latencies: LatencyRecorder
        var errors: Int
    }

    private final class Collector: @unchecked Sendable {
        let lock = NSLock()
        var latencies = LatencyRecorder()
        var errors = 0
        func add(_ nanoseconds: UInt64) { lock.withLock { latencies.record(nanoseconds) } }
        func fail() { lock.withLock { errors += 1 } }
    }

    /// `concurrency` clients, each writing 256-byte values back to back for the duration.
    private func measureWrites(_ target: ClusterTarget, member: Int, concurrency: Int) async throws -> WriteResult {
        let collector = Collector()
        let deadline = MonotonicClock.nanoseconds + UInt64(durationSeconds * 1e9)
        let value = [UInt8](repeating: 0x61, count: Self.valueBytes)
        let run = UInt64.random(in: 0..<UInt64.max)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<concurrency {
                let writer = try target.writer(member: member)
                group.addTask {
                    var sequence = 0
                    while MonotonicClock.nanoseconds < deadline {
                        let start = MonotonicClock.nanoseconds
                        do {
                            try await writer.put(key: "b\(run % 100_000)-\(concurrency)-\(client)-\(sequence)", value: value)
                            collector.add(MonotonicClock.nanoseconds - start)
                        } catch {
                            collector.fail()
                        }
                        sequence += 1
                    }
                }
            }
            try await group.waitForAll()
        }
        return WriteResult(throughput: Double(collector.latencies.count) / durationSeconds, latencies: collector.latencies, errors: collector.errors)
    }

    /// Kills the leader with SIGKILL, then writes through the survivors until
    /// one write commits; returns the elapsed milliseconds.
    private func measureFailover(_ target: ClusterTarget) async throws -> Double {
        let leader = try await target.leader()
        let survivors = (0..<3).filter { $0 != leader }
        let writers = try survivors.map { try target.writer(member: $0) }
        let value = [UInt8](repeating: 0x62, count: Self.valueBytes)
        let killed = MonotonicClock.nanoseconds
        target.kill(member: leader)
        var attempt = 0
        while MonotonicClock.nanoseconds - killed < 60_000_000_000 {
            let writer = writers[attempt % writers.count]
            attempt += 1
            do {
                try await writer.put(key: "failover-\(attempt)", value: value)
                return Double(MonotonicClock.nanoseconds - killed) / 1e6
            } catch {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        throw BenchmarkError(description: "\(target.name): no write committed within 60 s of killing the leader")
    }

    private func report(_ name: String, _ value: Double, _ unit: String) {
        let formatted = value >= 100 ? String(format: "%.0f", value) : String(format: "%.3f", value)
        FileHandle.standardOutput.write(Data("\(name) \(formatted) \(unit)\n".utf8))
    }
}

/// One key-value write path into a cluster member.
protocol ClusterWriter: Sendable {
    func put(key: String, value: [UInt8]) async throws
}

/// A three-member cluster under test.
protocol ClusterTarget: AnyObject, Sendable {
    var name: String { get }
    /// The member clients write to (the first leader, so neither system forwards).
    var leaderHint: Int { get }
    func writer(member: Int) throws -> ClusterWriter
    func leader() async throws -> Int
    func kill(member: Int)
    func stop()
    /// The members' process ids, in member order.
    var memberPIDs: [Int32] { get }
}

/// Polls `condition` until it returns a value or `seconds` pass.
func eventually<T>(_ what: String, seconds: Double = 30, _ condition: () async throws -> T?) async throws -> T {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if let value = try? await condition() { return value }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw BenchmarkError(description: "timed out waiting for \(what)")
}

import ClusterState
import Daemon
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `shoal-bench services`: the release `shoal dev` (its own data directory,
/// socket and cgroup parent, no registry: the busybox image is imported into
/// its store) runs 100 busybox replicas (`sleep 3600`, no ports); figures:
/// seconds from `shoal service create` to all 100 running, seconds from
/// `shoal service scale` 100 → 200 to all 200 running, and the resident
/// memory of the `shoal dev` process (manager, agent and runtime in one)
/// with 200 running tasks, then with 10,000 more tasks in the store: a
/// replicated service constrained to a node label no node has, so its tasks
/// are created, scheduled and stay pending with their reason. Everything is
/// removed afterwards: services, the daemon (by its PID), its data
/// directory and its cgroups.
struct ServicesBenchmark {
    static let replicas = 100
    static let scaledReplicas = 200
    static let pendingTasks = 10_000
    static let convergeTimeoutSeconds = 300.0
    static let pollIntervalMicroseconds: useconds_t = 50_000

    let node: DevBenchNode
    var processes: BenchProcesses { node.processes }
    var data: String { node.data }
    var socket: String { node.socket }

    init() throws {
        node = try DevBenchNode(label: "services", cgroupParent: "shoal-bench-\(getpid())", bridge: "shoalbench", bridgeAddress: "10.94.0.1/16", rootReason: "runs real containers")
    }

    func run() async throws {
        defer { node.cleanUp() }
        try importImage()
        try node.startDev(["--registry-port", "off"])
        let client = try ControlClient(host: "unix://" + socket)
        defer { Task { await client.shutdown() } }
        try await waitReady(client)

        var start = MonotonicClock.nanoseconds
        try cli(["service", "create", "--detach", "--name", "bench", "--replicas", "\(Self.replicas)", "--stop-grace-period", "1s",
                 "busybox:latest", "sleep", "3600"])
        let service: Service = try await client.call(.get, "/v1/services/bench")
        try await waitRunning(client, service: service.id, count: Self.replicas)
        let createSeconds = Double(MonotonicClock.nanoseconds - start) / 1e9
        print("services.create_\(Self.replicas)_to_running \(String(format: "%.3f", createSeconds)) s")

        start = MonotonicClock.nanoseconds
        try cli(["service", "scale", "--detach", "bench=\(Self.scaledReplicas)"])
        try await waitRunning(client, service: service.id, count: Self.scaledReplicas)
        let scaleSeconds = Double(MonotonicClock.nanoseconds - start) / 1e9
        print("services.scale_\(Self.replicas)_to_\(Self.scaledReplicas)_running \(String(format: "%.3f", scaleSeconds)) s")
        print("services.manager_rss_\(Self.scaledReplicas)_running \(residentMebibytes()) MiB")

        start = MonotonicClock.nanoseconds
        try cli(["service", "create", "--detach", "--name", "bench-pending", "--replicas", "\(Self.pendingTasks)",
                 "--constraint", "node.labels.shoal-bench==no-such-node", "busybox:latest", "sleep", "3600"])
        let pending: Service = try await client.call(.get, "/v1/services/bench-pending")
        try await waitPendingWithReason(client, service: pending.id, count: Self.pendingTasks)
        let pendingSeconds = Double(MonotonicClock.nanoseconds - start) / 1e9
        print("services.create_\(Self.pendingTasks)_pending_tasks \(String(format: "%.3f", pendingSeconds)) s")
        // A few leader passes over the full store, then the figure.
        var peak = 0
        for _ in 0..<10 {
            usleep(300_000)
            peak = max(peak, residentMebibytes())
        }
        print("services.store_tasks \(Self.pendingTasks + Self.scaledReplicas) tasks")
        print("services.manager_rss_\(Self.pendingTasks + Self.scaledReplicas)_tasks \(peak) MiB")

        try cli(["service", "rm", "bench", "bench-pending"])
        try waitContainersRemoved()
    }

    private var pid: Int32? { processes.pid("shoal-dev") }

    private func residentMebibytes() -> Int { pid.map(ProcessMemory.residentMebibytes(pid:)) ?? 0 }

    /// The busybox-static root filesystem of `shoal-bench runtime`, imported as busybox:latest into the daemon's store.
    private func importImage() throws {
        let rootfs = try RuntimeBenchmark.makeRootfs(in: processes.directory)
        let tarball = processes.directory + "/busybox.tar"
        let tar = try processes.run("/usr/bin/tar", ["-C", rootfs, "-cf", tarball, "."])
        guard tar.status == 0 else { throw BenchmarkError(description: "tar of the busybox rootfs failed: \(tar.output)") }
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let imported = try processes.run(node.shoal, ["image", "import", tarball, "busybox:latest", "--data", data])
        guard imported.status == 0 else { throw BenchmarkError(description: "shoal image import failed: \(imported.output)") }
    }

    private func cli(_ arguments: [String]) throws {
        let result = try processes.run(node.shoal, arguments, environment: ["SHOAL_HOST": "unix://" + socket])
        guard result.status == 0 else {
            throw BenchmarkError(description: "shoal \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.output)")
        }
    }

    private func waitReady(_ client: ControlClient) async throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: socket), (try? await client.call(.get, "/v1/services", as: [Service].self)) != nil {
                return
            }
            guard processes.isRunning("shoal-dev") else {
                throw BenchmarkError(description: "shoal dev exited; its log: \(log())")
            }
            usleep(Self.pollIntervalMicroseconds)
        }
        throw BenchmarkError(description: "shoal dev did not answer within 60 s; its log: \(log())")
    }

    private func waitRunning(_ client: ControlClient, service: ObjectID, count: Int) async throws {
        let deadline = Date().addingTimeInterval(Self.convergeTimeoutSeconds)
        var running = 0
        while Date() < deadline {
            let tasks: [ServiceTask] = try await client.call(.get, "/v1/tasks?service=\(service)")
            running = tasks.filter { $0.desiredState == .running && $0.status.state == .running }.count
            if running >= count { return }
            if let failed = tasks.first(where: { $0.status.state >= .failed }) {
                throw BenchmarkError(description: "task \(failed.id) ended \(failed.status.state): \(failed.status.error) \(failed.status.message)")
            }
            usleep(Self.pollIntervalMicroseconds)
        }
        throw BenchmarkError(description: "\(running)/\(count) running after \(Self.convergeTimeoutSeconds) s; log: \(log())")
    }

    /// Until the store holds `count` tasks of the service, each pending with the scheduler's reason.
    private func waitPendingWithReason(_ client: ControlClient, service: ObjectID, count: Int) async throws {
        let deadline = Date().addingTimeInterval(Self.convergeTimeoutSeconds)
        var seen = 0
        while Date() < deadline {
            let tasks: [ServiceTask] = try await client.call(.get, "/v1/tasks?service=\(service)")
            seen = tasks.filter { $0.status.state == .pending && !$0.status.message.isEmpty && $0.status.message != "waiting to be scheduled" }.count
            if seen >= count { return }
            usleep(500_000)
        }
        throw BenchmarkError(description: "\(seen)/\(count) tasks pending with a reason after \(Self.convergeTimeoutSeconds) s")
    }

    /// The agent deletes a removed service's containers (each stops within its 1 s grace period).
    private func waitContainersRemoved() throws {
        let directory = data + "/containers/containers"
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let left = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("task-") }
            if left.isEmpty { return }
            usleep(200_000)
        }
        throw BenchmarkError(description: "containers still present 120 s after service rm in \(directory)")
    }

    private func log() -> String {
        let text = (try? String(contentsOfFile: processes.directory + "/shoal-dev.log", encoding: .utf8)) ?? ""
        return String(text.suffix(2000))
    }
}

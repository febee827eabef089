import ClusterState
import Daemon
import Foundation
import Net
#if canImport(Glibc)
import Glibc
#endif

/// `shoal-bench dispatcher`: one release `shoal dev` manager (its own data
/// directory, socket, cgroup parent and bridge, no registry, the default
/// 5 s heartbeat period) in front of `--workers` simulated workers in this
/// process (``SimulatedWorkerFleet``: each joined through the real join
/// path with its own certificate, each on its own mutual-TLS connection,
/// running the agent's session code with a fake runtime). Figures: seconds
/// to join them all, seconds from the first session to every node ready,
/// seconds from `service create` of `--tasks` replicas (constrained to
/// workers) to all running as the workers report, the manager's RSS, its
/// CPU % over `--steady` seconds of heartbeats alone, and seconds from
/// killing `--kill` workers to their nodes down and tasks running elsewhere
/// (the deadline is 3 periods, 15 s, after a node's last heartbeat, which
/// came up to one period before the kill: 10 to 15 s plus the leader's check).
struct DispatcherBenchmark {
    struct Options {
        var workers = 1000
        var tasks = 3000
        var kill = 50
        var steadySeconds = 30.0

        init(parsing arguments: [String]) throws {
            var rest = arguments[...]
            while let flag = rest.popFirst() {
                guard let text = rest.popFirst() else { throw BenchmarkError(description: "\(flag) needs a value") }
                switch flag {
                case "--workers": workers = try Self.positive(text, flag)
                case "--tasks": tasks = try Self.positive(text, flag)
                case "--kill": kill = try Self.positive(text, flag)
                case "--steady": steadySeconds = Double(try Self.positive(text, flag))
                default: throw BenchmarkError(description: "unknown flag \(flag) (dispatcher takes --workers --tasks --kill --steady)")
                }
            }
            guard kill < workers else { throw BenchmarkError(description: "--kill \(kill) must be fewer than --workers \(workers)") }
        }

        static func positive(_ text: String, _ flag: String) throws -> Int {
            guard let value = Int(text), value > 0 else { throw BenchmarkError(description: "\(flag) must be a positive whole number, got '\(text)'") }
            return value
        }
    }

    static let timeoutSeconds = 300.0
    static let pollMicroseconds: useconds_t = 250_000

    let options: Options
    let node: DevBenchNode
    var processes: BenchProcesses { node.processes }
    var data: String { node.data }
    var socket: String { node.socket }

    init(options: Options) throws {
        self.options = options
        node = try DevBenchNode(label: "dispatcher", cgroupParent: "shoal-bench-dispatcher-\(getpid())", bridge: "shoalbdisp", bridgeAddress: "10.95.0.1/24", rootReason: "starts `shoal dev` (a runtime for its own agent)")
    }

    func run() async throws {
        defer { node.cleanUp() }
        // Two descriptors a worker here (its session, and its join or register while it joins), plus slack.
        let limit = try ResourceLimits.raiseOpenFileLimit(to: options.workers * 3 + 1024)
        guard limit >= options.workers * 2 + 256 else {
            throw BenchmarkError(description: "RLIMIT_NOFILE is \(limit): \(options.workers) workers need \(options.workers * 2 + 256); raise the hard limit (ulimit -Hn)")
        }
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try node.startDev(["--registry-port", "off"])
        let client = try ControlClient(host: "unix://" + socket)
        defer { Task { await client.shutdown() } }
        try await waitReady(client)
        let (token, address) = try joinCommand()
        guard let pid = processes.pid("shoal-dev") else { throw BenchmarkError(description: "shoal dev is not running") }
        figure("dispatcher.workers \(options.workers) workers")
        let baseline = ProcessMemory.residentMebibytes(pid: pid)
        figure("dispatcher.manager_rss_no_workers \(baseline) MiB")

        var start = MonotonicClock.nanoseconds
        let fleet = try await SimulatedWorkerFleet.join(count: options.workers, manager: address, token: token)
        defer { Task { await fleet.stopAll() } }
        figure("dispatcher.join_\(options.workers)_seconds \(Self.seconds(since: start)) s")

        start = MonotonicClock.nanoseconds
        let ids = Set(fleet.all.map(\.nodeID.rawValue))
        fleet.startAll()
        try await until("\(options.workers) nodes ready") {
            let nodes: [NodeView] = try await client.call(.get, "/v1/nodes")
            let ready = nodes.filter { ids.contains($0.id) && $0.status.state == .ready }.count
            return ready == options.workers && fleet.connectedCount == options.workers ? nil : "\(ready) ready, \(fleet.connectedCount) sessions"
        }
        figure("dispatcher.sessions_to_ready_\(options.workers)_seconds \(Self.seconds(since: start)) s")
        let readyRSS = ProcessMemory.residentMebibytes(pid: pid)
        figure("dispatcher.manager_rss_\(options.workers)_ready \(readyRSS) MiB")
        figure("dispatcher.manager_rss_per_session \((readyRSS - baseline) * 1024 / options.workers) KiB")

        var template = TaskTemplate(image: "busybox:latest")
        template.command = ["sleep", "3600"]
        template.placement.constraints = ["node.role==worker"]
        let spec = Service.Spec(name: "fleet", mode: .replicated(replicas: options.tasks), task: template)
        start = MonotonicClock.nanoseconds
        let service: Service = try await client.call(.post, "/v1/services", json: spec)
        try await until("\(options.tasks) tasks running") {
            let reported = fleet.all.reduce(0) { $0 + $1.runningTaskIDs.count }
            guard reported >= options.tasks else { return "\(reported) reported running by the workers" }
            let running = try await runningTasks(client, service.id)
            return running.count == options.tasks ? nil : "\(running.count) running in the store"
        }
        figure("dispatcher.create_\(options.tasks)_to_running_seconds \(Self.seconds(since: start)) s")
        figure("dispatcher.manager_rss_\(options.tasks)_running \(ProcessMemory.residentMebibytes(pid: pid)) MiB")

        // Heartbeats alone: no API calls from here while the manager's CPU is counted.
        usleep(2_000_000)
        let before = Self.cpuSeconds(pid: pid)
        let windowStart = MonotonicClock.nanoseconds
        usleep(useconds_t(options.steadySeconds * 1_000_000))
        let cpu = (Self.cpuSeconds(pid: pid) - before) / (Double(MonotonicClock.nanoseconds - windowStart) / 1e9) * 100
        figure("dispatcher.manager_cpu_steady_heartbeats \(String(format: "%.1f", cpu)) %")
        figure("dispatcher.manager_rss_steady \(ProcessMemory.residentMebibytes(pid: pid)) MiB")
        let nodes: [NodeView] = try await client.call(.get, "/v1/nodes")
        let notReady = nodes.filter { ids.contains($0.id) && $0.status.state != .ready }.count
        guard notReady == 0 else { throw BenchmarkError(description: "\(notReady) nodes not ready after \(options.steadySeconds) s of heartbeats") }
        let reopened = fleet.all.filter { $0.sessionCount != 1 }.count
        figure("dispatcher.sessions_reopened \(reopened) sessions")

        let victims = Array(fleet.all.prefix(options.kill))
        let victimIDs = Set(victims.map(\.nodeID.rawValue))
        start = MonotonicClock.nanoseconds
        await withTaskGroup(of: Void.self) { group in
            for victim in victims { group.addTask { await victim.stop() } }
        }
        try await until("\(options.kill) killed nodes down and their tasks replaced") {
            let nodes: [NodeView] = try await client.call(.get, "/v1/nodes")
            let down = nodes.filter { victimIDs.contains($0.id) && $0.status.state == .down }.count
            guard down == options.kill else { return "\(down) down" }
            let running = try await runningTasks(client, service.id)
            let misplaced = running.filter { victimIDs.contains($0.nodeID?.rawValue ?? "") }.count
            return running.count == options.tasks && misplaced == 0 ? nil : "\(running.count) running, \(misplaced) on killed nodes"
        }
        figure("dispatcher.kill_\(options.kill)_to_rescheduled_seconds \(Self.seconds(since: start)) s")
        figure("dispatcher.manager_rss_peak \(ProcessMemory.peakResidentMebibytes(pid: pid)) MiB")
        await fleet.stopAll()
    }

    private func runningTasks(_ client: ControlClient, _ service: ObjectID) async throws -> [ServiceTask] {
        let tasks: [ServiceTask] = try await client.call(.get, "/v1/tasks?service=\(service)")
        return tasks.filter { $0.desiredState == .running && $0.status.state == .running }
    }

    /// Polls `check` (nil: done; else what is missing) until the timeout.
    private func until(_ what: String, _ check: () async throws -> String?) async throws {
        let deadline = Date().addingTimeInterval(Self.timeoutSeconds)
        var last = ""
        while Date() < deadline {
            guard let missing = try await check() else { return }
            last = missing
            guard processes.isRunning("shoal-dev") else { throw BenchmarkError(description: "shoal dev exited; its log: \(log())") }
            usleep(Self.pollMicroseconds)
        }
        throw BenchmarkError(description: "timed out after \(Self.timeoutSeconds) s waiting for \(what): \(last); log: \(log())")
    }

    /// The worker token and the manager's address, from `shoal join-token worker`.
    /// `shoal dev` answers the API a moment before its first start stored the tokens: asked again until then.
    private func joinCommand() throws -> (JoinToken, String) {
        let deadline = Date().addingTimeInterval(30)
        while true {
            let result = try processes.run(node.shoal, ["join-token", "worker"], environment: ["SHOAL_HOST": "unix://" + socket])
            let words = result.output.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            if result.status == 0, let index = words.firstIndex(of: "--token"), index + 2 < words.count, let token = try? JoinToken(parsing: words[index + 1]) {
                return (token, words[index + 2])
            }
            guard Date() < deadline else { throw BenchmarkError(description: "shoal join-token worker did not print a join command: \(result.output)") }
            usleep(Self.pollMicroseconds)
        }
    }

    private func waitReady(_ client: ControlClient) async throws {
        try await until("shoal dev to answer") {
            guard FileManager.default.fileExists(atPath: socket) else { return "no socket yet" }
            return (try? await client.call(.get, "/v1/services", as: [Service].self)) != nil ? nil : "no answer yet"
        }
    }

    /// One `name value unit` line, written at once (not held in stdio's
    /// buffer when stdout is a file): a profiler can be timed against them.
    private func figure(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func seconds(since start: UInt64) -> String {
        String(format: "%.3f", Double(MonotonicClock.nanoseconds - start) / 1e9)
    }

    /// User + system CPU seconds of a process, from /proc/PID/stat.
    static func cpuSeconds(pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return 0 }
        // Fields after the command name: state is field 3; utime and stime are 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private func log() -> String {
        String(((try? String(contentsOfFile: processes.directory + "/shoal-dev.log", encoding: .utf8)) ?? "").suffix(2000))
    }

    /// Stops shoal dev by its PID and removes its cgroups, mounts, bridge and directory.
}

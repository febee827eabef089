import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// `shoal-bench runtime`: start-to-exit of `/bin/true` on one busybox root
/// filesystem, in the same run: `shoal container run --rm busybox true` end
/// to end (the release CLI through a release `shoal daemon` of the
/// benchmark's own: create, start, output, exit, removal, as `docker run
/// --rm`), Shoal's runtime through its API (create, start, wait, delete),
/// `crun run` and `runc run` (Debian packages; `run` also creates, waits
/// and deletes), and the kernel floor (`unshare` of the same namespaces);
/// then 100 containers started at once, Shoal (CLI and API) against crun.
///
/// crun 1.8 refuses this machine's hybrid cgroups, so each crun call goes
/// through `unshare --mount` + `sh` that hides /sys/fs/cgroup/unified (see
/// NOTES); that wrapper's own cost is measured and subtracted, and printed.
struct RuntimeBenchmark {
    var runs = 50
    var concurrent = 100

    static let crun = "/usr/bin/crun"
    static let runc = "/usr/sbin/runc"
    static let unshare = "/usr/bin/unshare"
    static let busybox = "/usr/bin/busybox"

    func run() throws {
        guard getuid() == 0 else { throw BenchmarkError(description: "runs containers: run as root") }
        for (path, package) in [(Self.busybox, "busybox-static"), (Self.crun, "crun"), (Self.runc, "runc")]
        where !FileManager.default.isExecutableFile(atPath: path) {
            throw BenchmarkError(description: "\(path) is missing; install it with `apt-get install -y \(package)`")
        }
        let processes = try BenchProcesses(label: "runtime")
        defer { processes.stopAll() }
        let rootfs = try Self.makeRootfs(in: processes.directory)
        let bundle = processes.directory + "/bundle"
        try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
        try Self.writeOCIConfig(bundle: bundle, rootfs: rootfs)
        let cgroupParent = "shoal-bench-\(getpid())"
        let runtime = try ContainerRuntime(configuration: .init(
            stateDirectory: processes.directory + "/shoal", cgroupParent: cgroupParent))
        defer {
            for state in runtime.list() { try? runtime.delete(state.id, force: true) }
            runtime.detach()
            for directory in runtime.cgroupLayout.makeCgroup(parent: cgroupParent, name: "x").directories {
                rmdir((directory as NSString).deletingLastPathComponent)
            }
        }
        if runtime.configuration.monitorExecutable == nil {
            FileHandle.standardError.write(Data("shoal-bench runtime: shoal-monitor not found beside shoal-bench; build it (swift build -c release)\n".utf8))
        }
        let daemon = try BenchDaemon(processes: processes)
        defer { daemon.stop() }
        try daemon.start(rootfs: rootfs)
        for (key, value) in daemon.environment { setenv(key, value, 1) }
        let crunRoot = processes.directory + "/crun-state"
        let runcRoot = processes.directory + "/runc-state"

        @Sendable func shoalOnce(_ id: String) throws {
            let container = try runtime.run(ContainerSpec(id: id, rootFilesystem: .directory(rootfs), command: ["/bin/true"]))
            guard container.wait(timeout: .seconds(60)) == .exited(0) else {
                throw BenchmarkError(description: "shoal container \(id): \(container.state.startError ?? "did not exit 0")")
            }
            try runtime.delete(id)
        }
        let crunCommand: @Sendable (String) -> [String] = { id in
            ["--mount", "--propagation", "private", "--", "/bin/sh", "-c",
             "umount /sys/fs/cgroup/unified 2>/dev/null; exec \(Self.crun) --root \(crunRoot) run --bundle \(bundle) \(id)"]
        }

        let cli: @Sendable (Int) throws -> Void = { _ in try Self.execute(daemon.shoal, ["container", "run", "--rm", "busybox", "true"]) }
        let shoalCLI = try Self.median(runs, cli)
        let shoalCLINoNetwork = try Self.median(runs) { _ in
            try Self.execute(daemon.shoal, ["container", "run", "--rm", "--network", "none", "busybox", "true"])
        }
        let cliStartup = try Self.median(runs) { _ in try Self.execute(daemon.shoal, ["--version"]) }
        let shoal = try Self.median(runs) { try shoalOnce("bench-\($0)") }
        // Where our time goes: create+start+wait alone, delete alone.
        let deletes = DeleteTimes()
        let shoalToExit = try Self.median(runs) { index in
            let id = "split-\(index)"
            let container = try runtime.run(ContainerSpec(id: id, rootFilesystem: .directory(rootfs), command: ["/bin/true"]))
            guard container.wait(timeout: .seconds(60)) == .exited(0) else { throw BenchmarkError(description: "container \(id) failed") }
            let start = ContinuousClock.now
            try runtime.delete(id)
            deletes.add(Self.milliseconds(since: start))
        }
        let crunRaw = try Self.median(runs) { try Self.execute(Self.unshare, crunCommand("crun-\(getpid())-\($0)")) }
        let wrapper = try Self.median(runs) { _ in
            try Self.execute(Self.unshare, ["--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                                            "umount /sys/fs/cgroup/unified 2>/dev/null; exec /bin/true"])
        }
        let runc = try Self.median(runs) { try Self.execute(Self.runc, ["--root", runcRoot, "run", "--bundle", bundle, "runc-\(getpid())-\($0)"]) }
        let floor = try Self.median(runs) { _ in try Self.execute(Self.unshare, ["--fork", "--pid", "--mount", "--uts", "--ipc", "/bin/true"]) }
        let floorWithNet = try Self.median(runs) { _ in
            try Self.execute(Self.unshare, ["--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "/bin/true"])
        }
        let crun = max(crunRaw - wrapper, 0.001)
        Self.report("runtime.start_to_exit.shoal_cli", shoalCLI, "ms")
        Self.report("runtime.start_to_exit.shoal_cli_network_none", shoalCLINoNetwork, "ms")
        Self.report("runtime.start_to_exit.shoal_cli_process_startup", cliStartup, "ms")
        Self.report("runtime.start_to_exit.shoal_api", shoal, "ms")
        Self.report("runtime.start_to_exit.shoal_api_without_delete", shoalToExit - deletes.median, "ms")
        Self.report("runtime.start_to_exit.shoal_api_delete", deletes.median, "ms")
        Self.report("runtime.start_to_exit.crun", crun, "ms")
        Self.report("runtime.start_to_exit.crun_with_unshare_wrapper", crunRaw, "ms")
        Self.report("runtime.start_to_exit.unshare_wrapper_subtracted", wrapper, "ms")
        Self.report("runtime.start_to_exit.runc", runc, "ms")
        Self.report("runtime.start_to_exit.kernel_floor_unshare", floor, "ms")
        Self.report("runtime.start_to_exit.kernel_floor_unshare_with_net", floorWithNet, "ms")
        Self.report("runtime.start_to_exit.shoal_cli_over_crun", shoalCLI / crun, "ratio")
        Self.report("runtime.start_to_exit.shoal_cli_network_none_over_crun", shoalCLINoNetwork / crun, "ratio")
        Self.report("runtime.start_to_exit.shoal_over_crun", shoal / crun, "ratio")
        Self.report("runtime.start_to_exit.shoal_over_runc", shoal / runc, "ratio")

        // Concurrent starts: every container started at once, wall time until all exited (and were deleted).
        let shoalCLIConcurrent = try Self.wallMilliseconds(concurrent, cli)
        let shoalConcurrent = try Self.wallMilliseconds(concurrent) { try shoalOnce("burst-\($0)") }
        let crunConcurrent = try Self.wallMilliseconds(concurrent) {
            try Self.execute(Self.unshare, crunCommand("crun-burst-\(getpid())-\($0)"))
        }
        Self.report("runtime.concurrent\(concurrent).shoal_cli_wall", shoalCLIConcurrent, "ms")
        Self.report("runtime.concurrent\(concurrent).shoal_api_wall", shoalConcurrent, "ms")
        Self.report("runtime.concurrent\(concurrent).crun_wall", crunConcurrent, "ms")
        Self.report("runtime.concurrent\(concurrent).shoal_cli_over_crun", shoalCLIConcurrent / crunConcurrent, "ratio")
        Self.report("runtime.concurrent\(concurrent).shoal_over_crun", shoalConcurrent / crunConcurrent, "ratio")
        var loads = [Double](repeating: 0, count: 3)
        if getloadavg(&loads, 3) == 3 { Self.report("runtime.load_average_1min", loads[0], "load") }
    }

    static func report(_ name: String, _ value: Double, _ unit: String) {
        print("\(name) \(String(format: "%.2f", value)) \(unit)")
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15
    }

    /// Median of `runs` timed calls, after one untimed warm-up.
    static func median(_ runs: Int, _ body: (Int) throws -> Void) throws -> Double {
        try body(-1)
        var samples: [Double] = []
        for index in 0..<runs {
            let start = ContinuousClock.now
            try body(index)
            samples.append(milliseconds(since: start))
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    /// Wall time of `count` calls started together on their own threads.
    static func wallMilliseconds(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws -> Double {
        let group = DispatchGroup()
        let failures = FailureList()
        let start = ContinuousClock.now
        for index in 0..<count {
            group.enter()
            let thread = Thread {
                do { try body(index) } catch { failures.append("\(error)") }
                group.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        let wall = milliseconds(since: start)
        if let first = failures.first { throw BenchmarkError(description: first) }
        return wall
    }

    final class DeleteTimes {
        private var samples: [Double] = []
        func add(_ value: Double) { samples.append(value) }
        var median: Double { samples.isEmpty ? 0 : samples.sorted()[samples.count / 2] }
    }

    final class FailureList: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [String] = []
        func append(_ item: String) { lock.withLock { items.append(item) } }
        var first: String? { lock.withLock { items.first } }
    }

    /// Runs a program to completion with no output; throws unless it exits 0.
    /// posix_spawn + a blocking waitpid: Foundation's Process polls for the
    /// exit every 50 ms, which would dominate a figure of a few ms.
    static func execute(_ path: String, _ arguments: [String]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw BenchmarkError(description: "\(path): posix_spawn failed: \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else {
            throw BenchmarkError(description: "\(path) \(arguments.joined(separator: " ")) ended with wait status \(status)")
        }
    }

    /// /bin/busybox with its applets as symlinks, /etc/passwd and /etc/group.
    static func makeRootfs(in directory: String) throws -> String {
        let root = directory + "/rootfs"
        let fileManager = FileManager.default
        for path in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
            try fileManager.createDirectory(atPath: root + "/" + path, withIntermediateDirectories: true)
        }
        try fileManager.copyItem(atPath: busybox, toPath: root + "/bin/busybox")
        try execute("/usr/sbin/chroot", [root, "/bin/busybox", "--install", "-s", "/bin"])
        try "root:x:0:0:root:/root:/bin/sh\n".write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\n".write(toFile: root + "/etc/group", atomically: true, encoding: .utf8)
        return root
    }

    /// `runc spec`'s defaults, cut to what Shoal also does: the same
    /// namespaces (network included), masked and read-only paths, Docker's
    /// capabilities, devices denied, no terminal.
    static func writeOCIConfig(bundle: String, rootfs: String) throws {
        let capabilities = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
                            "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
                            "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"]
        let config: [String: Any] = [
            "ociVersion": "1.0.2",
            "process": [
                "terminal": false, "user": ["uid": 0, "gid": 0], "args": ["/bin/true"],
                "env": ["PATH=" + ContainerRuntime.defaultPath], "cwd": "/",
                "capabilities": ["bounding": capabilities, "effective": capabilities, "permitted": capabilities],
                "noNewPrivileges": true,
            ],
            "root": ["path": rootfs, "readonly": false],
            "hostname": "bench",
            "mounts": [
                ["destination": "/proc", "type": "proc", "source": "proc"],
                ["destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]],
                ["destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]],
                ["destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]],
                ["destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]],
                ["destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]],
            ],
            "linux": [
                "resources": ["devices": [["allow": false, "access": "rwm"]]],
                "namespaces": [["type": "pid"], ["type": "network"], ["type": "ipc"], ["type": "uts"], ["type": "mount"]],
                "maskedPaths": ContainerSpec.defaultMaskedPaths,
                "readonlyPaths": ContainerSpec.defaultReadOnlyPaths,
            ],
        ]
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: bundle + "/config.json"))
    }
}

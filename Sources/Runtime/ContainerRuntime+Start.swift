import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer
import Foundation

extension ContainerRuntime {
    /// Namespaces every container gets; a new net namespace with `--network
    /// none` (bridge containers start in one prepared beforehand, host ones
    /// in the host's), user when the spec maps ids.
    static func cloneFlags(_ spec: ContainerSpec) -> Int32 {
        var flags = SHOAL_CLONE_NEWPID | SHOAL_CLONE_NEWNS | SHOAL_CLONE_NEWUTS | SHOAL_CLONE_NEWIPC
        if spec.network == .none { flags |= SHOAL_CLONE_NEWNET }
        if spec.userNamespace != nil { flags |= SHOAL_CLONE_NEWUSER }
        return Int32(flags)
    }

    /// Bytes of pipe buffer behind each log FIFO: what a container can write
    /// while no runtime drains it (daemon restart) before its writes block.
    static let logPipeBytes: Int32 = 1 << 20

    /// Creates the cgroup, clones the container's init into its namespaces,
    /// attaches it to the cgroup, lets it go, and waits for its execve. On any
    /// failure the child is killed and reaped, the cgroup removed, the error
    /// recorded in the state, and the error thrown: nothing is left behind.
    public func start(_ id: String) throws {
        let container = try lookup(id)
        container.filesystemLock.lock()
        defer { container.filesystemLock.unlock() }
        let state = container.state
        guard state.status == .created else {
            throw RuntimeError.invalidState(id: id, state: state.status, operation: "start")
        }
        var readEnds: [Int32] = []
        var pid: Int32 = -1
        var network: StartedNetwork?
        var monitorPid: Int32 = -1
        var timings = StepTimings("start")
        defer { timings.report() }
        let rootMount = beginRootMount(state.spec)
        do {
            let networkFiles = try writeNetworkFiles(container, state)
            timings.mark("files")
            do {
                try container.cgroup.create(limits: state.spec.limits)
            } catch {
                throw RuntimeError.hostSetupFailed(error)
            }
            timings.mark("cgroup")
            network = try attachNetwork(state)
            timings.mark("network")
            var childEnds: [Int32] = []
            defer { childEnds.forEach(Syscall.close) }
            for name in ["stdout", "stderr"] {
                let (read, write) = try Self.logFifo(directory: container.directory, name: name)
                readEnds.append(read)
                childEnds.append(write)
            }
            let log = try Self.hostCall { () throws(SystemError) in
                try ContainerLogFile(directory: container.directory, options: state.spec.logging ?? LogOptions())
            }
            let failure = try Self.hostCall(Syscall.pipe)
            defer { Syscall.close(failure.read) }
            var failureWriteOpen = true
            defer { if failureWriteOpen { Syscall.close(failure.write) } }
            // With a user namespace the parent writes the id maps while the
            // child waits on a sync pipe (and attaches it to the cgroup);
            // otherwise the child joins its cgroup itself and the call
            // returns once it has exec'd (CLONE_VM | CLONE_VFORK, fast).
            let usesSyncPipe = state.spec.userNamespace != nil
            let sync = usesSyncPipe ? try Self.hostCall(Syscall.pipe) : (read: Int32(-1), write: Int32(-1))
            var procs: [Int32] = []
            defer { procs.forEach(Syscall.close) }
            var cgroupDirectory: (directory: Int32, procs: Int32) = (-1, -1)
            defer { [cgroupDirectory.directory, cgroupDirectory.procs].filter { $0 >= 0 }.forEach(Syscall.close) }
            if !usesSyncPipe {
                for file in container.cgroup.selfJoinFiles {
                    procs.append(try Self.hostCall { () throws(SystemError) in try Syscall.open(file, O_WRONLY) })
                }
                if let directory = container.cgroup.cloneIntoDirectory {
                    cgroupDirectory.directory = try Self.hostCall { () throws(SystemError) in try Syscall.open(directory, O_RDONLY | O_DIRECTORY) }
                    cgroupDirectory.procs = try Self.hostCall { () throws(SystemError) in try Syscall.open(directory + "/cgroup.procs", O_WRONLY) }
                }
            }

            var stdio = try prepareStdio(container, state.spec.stdio, outputFifo: childEnds[0])
            defer { stdio.descriptors.forEach(Syscall.close) }

            timings.mark("stdio")
            if let rootMount {
                do { try rootMount.wait() } catch { throw RuntimeError.hostSetupFailed(error) }
                timings.mark("root")
            }
            let plan = SpawnPlan()
            fill(plan, state: state, extraMounts: networkFiles, rootMounted: rootMount != nil)
            stdio.apply(to: plan, windowSize: state.spec.stdio?.windowSize)
            plan.raw.net_namespace_fd = network?.attachment.namespace ?? -1
            plan.raw.stdout_fd = childEnds[0]
            plan.raw.stderr_fd = childEnds[1]
            plan.raw.sync_fd = sync.read
            plan.raw.error_fd = failure.write
            plan.raw.cgroup_procs_fds = UnsafePointer(plan.array(procs))
            plan.raw.cgroup_procs_count = procs.count
            plan.raw.cgroup_directory_fd = cgroupDirectory.directory
            plan.raw.cgroup_directory_procs_fd = cgroupDirectory.procs
            if let monitorPath = configuration.monitorExecutable {
                // The record the monitor writes; reset now so a stale one never counts.
                let statusFile = try Self.hostCall { () throws(SystemError) in try ExitRecord.openForRun(directory: container.directory) }
                var containerPid: pid_t = -1
                monitorPid = withExtendedLifetime(plan) {
                    monitorPath.withCString { path in
                        withUnsafePointer(to: stdio.streams) {
                            shoal_spawn_monitored_container(&plan.raw, path, statusFile, $0, failure.read, &containerPid)
                        }
                    }
                }
                failureWriteOpen = false  // closed by the call
                Syscall.close(statusFile)
                pid = monitorPid < 0 ? monitorPid : containerPid
            } else {
                pid = withExtendedLifetime(plan) { shoal_spawn_container(&plan.raw) }
            }
            Syscall.close(sync.read)
            if failureWriteOpen { Syscall.close(failure.write) }
            failureWriteOpen = false
            childEnds.forEach(Syscall.close)
            childEnds = []
            stdio.descriptors.forEach(Syscall.close)
            stdio.descriptors = []
            if pid < 0 {
                Syscall.close(sync.write)
                var code = -pid
                pid = -1
                if monitorPid > 0 {
                    // The monitor's helper could not clone the container: its report says why.
                    let report = try Self.readFailure(failure.read)
                    guard case .containerSetupFailed(let cause)? = report, cause.call == "clone" else {
                        throw report ?? .hostSetupFailed(SystemError(call: "clone", errno: EPROTO, path: "monitor reported no container"))
                    }
                    code = cause.errno
                }
                let error = SystemError(call: "clone", errno: code, path: id)
                if state.spec.userNamespace != nil, Self.userNamespaceRefusal(code) {
                    throw RuntimeError.userNamespacesUnavailable(
                        SystemError(call: "clone(CLONE_NEWUSER)", errno: code, path: id))
                }
                throw RuntimeError.hostSetupFailed(error)
            }
            if usesSyncPipe, let mapping = state.spec.userNamespace {
                do {
                    try container.cgroup.attach(pid: pid)
                    try Syscall.writeFile("/proc/\(pid)/uid_map", "0 \(mapping.hostUID) \(mapping.size)\n")
                    try Syscall.writeFile("/proc/\(pid)/gid_map", "0 \(mapping.hostGID) \(mapping.size)\n")
                    try Syscall.writeAll(sync.write, [1], path: "sync pipe")
                    Syscall.close(sync.write)
                } catch {
                    Syscall.close(sync.write)
                    throw RuntimeError.hostSetupFailed(error)
                }
            }
            timings.mark("spawn")
            if let error = try Self.readFailure(failure.read) { throw error }
            timings.mark("exec")

            // Watch the monitor when there is one: it exits once the exit record is written.
            let watched = monitorPid > 0 ? monitorPid : pid
            let pidfd = try Self.hostCall { () throws(SystemError) in
                try Syscall.run("pidfd_open", path: "pid \(watched)") { shoal_pidfd_open(watched) }
            }
            let ticks = ProcessIdentity.startTicks(pid: pid)
            if let started = network {
                Syscall.close(started.attachment.namespace)  // the container's init holds it now
                network?.attachment.namespace = -1
                container.adoptProxies(started.proxies)
                started.proxies.forEach { $0.start() }
            }
            let monitorTicks = monitorPid > 0 ? ProcessIdentity.startTicks(pid: monitorPid) : nil
            container.update { [monitorPid] state in
                state.status = .running
                state.pid = pid
                state.processStartTicks = ticks
                state.monitorPid = monitorPid > 0 ? monitorPid : nil
                state.monitorStartTicks = monitorTicks
                state.startedAt = Date()
                state.health = state.spec.healthCheck == nil ? nil : HealthState()
                if let started = network {
                    state.network?.hostInterface = started.attachment.hostInterface
                    state.network?.ports = started.proxies.map(\.published)
                }
            }
            let streams = zip(readEnds, ["stdout", "stderr"]).map { ContainerMonitor.LogStream(fifo: $0, name: $1) }
            try startMonitor(container, pidfd: pidfd, streams: streams, log: log)
            readEnds = []  // the monitor owns them now
            startHealthChecks(container)
            timings.mark("record")
        } catch {
            if pid > 0 {
                Glibc.kill(pid, SIGKILL)
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}  // ECHILD when the monitor is its parent
            }
            if monitorPid > 0 {
                var status: Int32 = 0
                while waitpid(monitorPid, &status, 0) < 0 && errno == EINTR {}
            }
            readEnds.forEach(Syscall.close)
            rootMount?.abandon()
            if let network { tearDown(network) }
            _ = container.takeProxies()  // closed by tearDown
            try? container.cgroup.destroy(timeout: configuration.cgroupRemovalTimeout)
            container.update { state in
                state.status = .exited
                state.exitStatus = .exited(Self.exitCode(for: error))
                state.startError = "\(error)"
                state.finishedAt = Date()
            }
            throw error
        }
    }

    /// Whether `code`, from a clone with CLONE_NEWUSER, means the kernel
    /// refuses user namespaces to this process (rather than, say, running out
    /// of memory). EPERM/EACCES: chrooted caller or an LSM policy; EUSERS:
    /// nesting limit; ENOSPC: only when user.max_user_namespaces is 0 (else
    /// it is the namespace count of another type, or a full table).
    static func userNamespaceRefusal(_ code: Int32) -> Bool {
        switch code {
        case EPERM, EACCES, EUSERS: return true
        case ENOSPC:
            let limit = (try? Syscall.readFile("/proc/sys/user/max_user_namespaces"))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return limit == "0"
        default: return false
        }
    }

    /// nil when this process can create user namespaces (containers with a
    /// ``ContainerSpec/userNamespace`` can start), else the typed error such a
    /// start fails with: a daemon configured to remap ids checks this at
    /// start-up instead of failing every container.
    public static func userNamespaceUnavailability() -> RuntimeError? {
        let code = shoal_probe_user_namespace()
        guard code != 0 else { return nil }
        let error = SystemError(call: "clone(CLONE_NEWUSER)", errno: code, path: "probe")
        return userNamespaceRefusal(code) ? .userNamespacesUnavailable(error) : .hostSetupFailed(error)
    }

    /// Docker's codes for a start that failed: 127 not found, 126 not
    /// executable, 125 anything else.
    static func exitCode(for error: Error) -> Int32 {
        switch error as? RuntimeError {
        case .executableNotFound: return 127
        case .permissionDenied: return 126
        default: return 125
        }
    }

    static func hostCall<T>(_ body: () throws(SystemError) -> T) throws -> T {
        do { return try body() } catch { throw RuntimeError.hostSetupFailed(error) }
    }

    /// A FIFO in the container's directory: the runtime reads it
    /// (non-blocking), the container gets a read-write end as stdout/stderr,
    /// so its writes never hit EPIPE while no runtime is draining (restart).
    static func logFifo(directory: String, name: String) throws -> (read: Int32, childEnd: Int32) {
        let path = directory + "/\(name).fifo"
        return try hostCall { () throws(SystemError) in
            // One left by an earlier run (or a reused directory) serves again:
            // no process of that run is left to write to it.
            var info = stat()
            if lstat(path, &info) != 0 || (info.st_mode & S_IFMT) != S_IFIFO {
                unlink(path)
                try Syscall.run("mkfifo", path: path) { mkfifo(path, 0o600) }
            }
            let read = try Syscall.open(path, O_RDONLY | O_NONBLOCK)
            do throws(SystemError) {
                let write = try Syscall.open(path, O_RDWR)
                _ = shoal_set_pipe_size(read, logPipeBytes)  // best effort: the default 64 KiB also works
                return (read, write)
            } catch {
                Syscall.close(read)
                throw error
            }
        }
    }

    /// Starts mounting the container's overlay root (see ``OverlayRootMount``);
    /// nil for a directory root, and in a user namespace, where the child
    /// mounts it (nothing is bound onto /etc/hosts there, see ``fill``).
    func beginRootMount(_ spec: ContainerSpec) -> OverlayRootMount? {
        guard spec.userNamespace == nil, case .overlay(let lower, let upper, let work, let mountPoint) = spec.rootFilesystem else {
            return nil
        }
        let layers = [mountPointLayer] + lower
        let parent = (mountPoint as NSString).deletingLastPathComponent
        if upper == parent + "/upper", work == parent + "/work", mountPoint == parent + "/merged" {
            OverlayRootMount.unmount(mountPoint)  // a leftover of a runtime that died mid-start
            if rootPool.take(layers: layers, parent: parent) {
                return OverlayRootMount(mounted: mountPoint)
            }
        }
        let options = Self.overlayOptions(lower: layers, upper: upper, work: work)
        return OverlayRootMount(options: options, directories: [upper, work], mountPoint: mountPoint)
    }

    /// Everything the child needs, computed here in Swift. `rootMounted`:
    /// the overlay root is mounted already (``beginRootMount(_:)``).
    func fill(_ plan: SpawnPlan, state: ContainerState, extraMounts: [BindMount] = [], rootMounted: Bool = false) {
        let spec = state.spec
        plan.raw.clone_flags = Self.cloneFlags(spec)
        switch spec.rootFilesystem {
        case .directory(let path):
            plan.raw.rootfs = plan.string(path)
        case .overlay(_, _, _, let mountPoint) where rootMounted:
            plan.raw.rootfs = plan.string(mountPoint)  // bound onto itself like a directory root
        case .overlay(let lower, let upper, let work, let mountPoint):
            _ = try? Syscall.makeDirectories(upper)
            _ = try? Syscall.makeDirectories(work)
            _ = try? Syscall.makeDirectories(mountPoint)
            // Mounted by the child: a user namespace (see beginRootMount), without the shared
            // mount-point layer, as nothing is bound onto /etc/hosts there and an empty one would
            // hide the image's.
            plan.raw.rootfs = plan.string(mountPoint)
            plan.raw.overlay_data = plan.string(Self.overlayOptions(lower: lower, upper: upper, work: work))
        }
        plan.raw.readonly_rootfs = spec.readOnlyRootFilesystem ? 1 : 0
        let binds = (extraMounts + spec.mounts).map { mount in
            ShoalBindMount(
                source: plan.string(mount.source), destination: plan.string(mount.destination),
                read_only: mount.readOnly ? 1 : 0, recursive: mount.recursive ? 1 : 0)
        }
        plan.raw.binds = UnsafePointer(plan.array(binds))
        plan.raw.bind_count = binds.count
        plan.raw.hostname = plan.string(Self.hostname(spec))
        plan.raw.masked_paths = UnsafePointer(plan.stringArray(spec.maskedPaths))
        plan.raw.masked_count = spec.maskedPaths.count
        plan.raw.readonly_paths = UnsafePointer(plan.stringArray(spec.readOnlyPaths))
        plan.raw.readonly_count = spec.readOnlyPaths.count
        plan.setProcess(
            command: spec.command, environment: Self.environment(spec, user: state.user), user: state.user,
            workingDirectory: spec.workingDirectory, capabilities: spec.capabilities,
            noNewPrivileges: spec.noNewPrivileges, limits: spec.resourceLimits)
    }

    /// Reads the child's report from the error pipe: nil at end of file
    /// (execve succeeded and closed the pipe), otherwise the typed error.
    static func readFailure(_ descriptor: Int32) throws -> RuntimeError? {
        let bytes = try hostCall { () throws(SystemError) in try Syscall.readAll(descriptor, path: "error pipe") }
        if bytes.isEmpty { return nil }
        guard bytes.count >= MemoryLayout<ShoalFailure>.size else {
            return .containerSetupFailed(SystemError(call: "read", errno: EPROTO, path: "short report from the child"))
        }
        var failure = ShoalFailure()
        withUnsafeMutableBytes(of: &failure) { $0.copyBytes(from: bytes.prefix(MemoryLayout<ShoalFailure>.size)) }
        let call = withUnsafeBytes(of: failure.call) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let path = withUnsafeBytes(of: failure.path) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch failure.kind {
        case Int32(SHOAL_FAILURE_EXECUTABLE_NOT_FOUND.rawValue):
            return .executableNotFound(path)
        default:
            if call == "execve" && failure.error_number == EACCES { return .permissionDenied(path) }
            if call == "chdir" && failure.error_number == ENOENT { return .workingDirectoryNotFound(path) }
            return .containerSetupFailed(SystemError(call: call, errno: failure.error_number, path: path))
        }
    }
}

import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer
import Foundation

extension ContainerRuntime {
    /// Runs `exec` inside a running container (its namespaces, cgroup,
    /// capabilities and user) to completion and returns its status and
    /// output. The joining happens in C in a freshly forked helper, because
    /// setns into a mount namespace refuses multithreaded callers.
    public func exec(_ id: String, _ exec: ExecSpec) throws -> ExecResult {
        var launched = try launchExec(id, exec, streams: exec.standardInput != nil ? .standardInput : .none)
        defer { launched.descriptors.forEach(Syscall.close) }
        if let bytes = exec.standardInput {
            // Its own copy of the write end: the original is closed on return.
            // A process that exits without reading gets EPIPE, not SIGPIPE
            // (the daemon ignores SIGPIPE).
            let writer = dup(launched.standardInput)
            Thread.detachNewThread {
                if writer >= 0 {
                    try? Syscall.writeAll(writer, Array(bytes), path: "exec stdin")
                    Syscall.close(writer)
                }
            }
            Syscall.close(launched.standardInput)
            launched.descriptors.removeAll { $0 == launched.standardInput }
        }
        let deadline = exec.timeout.map { ContinuousClock.now + $0 }
        let (standardOutput, standardError, timedOut) = Self.drainBoth(launched.standardOutput, launched.standardError, until: deadline)
        if timedOut { Glibc.kill(launched.pid, SIGKILL) }
        var result = ExecResult(status: Self.reap(launched.pid), standardOutput: standardOutput, standardError: standardError)
        result.timedOut = timedOut
        return result
    }

    /// Starts `exec` inside a running container and hands back its streams
    /// to be driven by the caller (`exec -i`, `exec -t`): a pipe to its stdin
    /// (``ExecStreams/standardInput``), or a pseudo-terminal from the
    /// container's devpts (``ExecStreams/terminal``), whose master we keep.
    /// The caller reaps it with ``ExecProcess/wait()``.
    public func startExec(_ id: String, _ exec: ExecSpec, streams: ExecStreams) throws -> ExecProcess {
        let launched = try launchExec(id, exec, streams: streams)
        return ExecProcess(launched)
    }

    /// Starts `exec` inside a running container and returns its pid once it
    /// runs (`exec -d`): no streams (its output is discarded, as Docker's),
    /// reaped by a thread of ours when it exits. With `terminal` (`exec -d
    /// -t`) it gets a pseudo-terminal whose master we hold and drain until
    /// the last holder of the slave goes, as containerd's shim does: a shell
    /// waits there for input instead of exiting at end of file. Nothing can
    /// attach to it later (Docker cannot either). A failure before its
    /// execve (`executable file not found`) is thrown, as for `exec`.
    @discardableResult
    public func startDetachedExec(_ id: String, _ exec: ExecSpec, terminal: Bool = false) throws -> Int32 {
        let process = try startExec(id, exec, streams: terminal ? .terminal : .detached)
        if terminal {
            Thread.detachNewThread {
                var discarded = [UInt8](repeating: 0, count: 4096)
                while true {  // until EIO: no process holds the slave any more
                    let count = read(process.terminal, &discarded, discarded.count)
                    if count > 0 || (count < 0 && errno == EINTR) { continue }
                    break
                }
            }
        }
        Thread.detachNewThread { _ = process.wait() }
        return process.pid
    }

    /// The common part of `exec` and `startExec`: joins the container and
    /// starts the process; its descriptors belong to the caller.
    func launchExec(_ id: String, _ exec: ExecSpec, streams: ExecStreams) throws -> LaunchedExec {
        let container = try lookup(id)
        let state = container.state
        guard state.status == .running, let pid = state.pid, let ticks = state.processStartTicks else {
            throw RuntimeError.invalidState(id: id, state: state.status, operation: "exec in")
        }
        guard let first = exec.command.first, !first.isEmpty else {
            throw RuntimeError.invalidSpec("no command: give the program to run")
        }
        let user = exec.user == nil
            ? state.user
            : try ResolvedUser.resolve(exec.user, layers: state.spec.rootFilesystem.layersTopFirst)

        var descriptors: [Int32] = []  // closed on every path
        defer { descriptors.forEach(Syscall.close) }
        func keep(_ descriptor: Int32) -> Int32 {
            descriptors.append(descriptor)
            return descriptor
        }
        // The pidfd pins the container's init: check it is still the same process.
        let pidfd = keep(shoal_pidfd_open(pid))
        guard pidfd >= 0, ProcessIdentity.startTicks(pid: pid) == ticks else {
            throw RuntimeError.invalidState(id: id, state: .exited, operation: "exec in")
        }
        // The container's root, taken from its init: the helper enters it
        // after setns (the mount namespace's own root is the host's "/" when
        // the runtime runs chrooted). Checked again once open, so the fd is
        // this container's and not that of a process that reused the pid.
        let rootPath = "/proc/\(pid)/root"
        let root = shoal_open_directory_path(rootPath)
        let openError = shoal_errno()
        if root < 0 && openError != ENOENT && openError != ESRCH {
            throw RuntimeError.hostSetupFailed(SystemError(call: "open", errno: openError, path: rootPath))
        }
        guard root >= 0, ProcessIdentity.startTicks(pid: pid) == ticks else {
            if root >= 0 { Syscall.close(root) }
            throw RuntimeError.invalidState(id: id, state: .exited, operation: "exec in")
        }
        _ = keep(root)
        // The helper (single-threaded) writes itself into these before joining the namespaces.
        let joinFiles = container.cgroup.selfJoinFiles + (container.cgroup.cloneIntoDirectory.map { [$0 + "/cgroup.procs"] } ?? [])
        let procs = try joinFiles.map { file in
            try Self.hostCall { () throws(SystemError) in keep(try Syscall.open(file, O_WRONLY)) }
        }
        let report = try Self.hostCall(Syscall.pipe)
        _ = keep(report.read)
        let failure = try Self.hostCall(Syscall.pipe)
        _ = keep(failure.read)
        var childEnds = [report.write, failure.write]
        defer { childEnds.forEach(Syscall.close) }
        var launched = LaunchedExec()
        let plan = SpawnPlan()
        switch streams {
        case .terminal:
            var pair: [Int32] = [-1, -1]
            try Self.hostCall { () throws(SystemError) in
                try Syscall.run("socketpair", path: "console socket") { shoal_socketpair_cloexec(&pair) }
            }
            _ = keep(pair[1])
            childEnds.append(pair[0])
            plan.raw.console_socket_fd = pair[0]
            plan.raw.window_rows = exec.windowSize?.rows ?? 0
            plan.raw.window_columns = exec.windowSize?.columns ?? 0
            launched.consoleSocket = pair[1]
        case .detached:
            break  // -1: the child opens /dev/null for 0, 1 and 2
        case .none, .standardInput:
            let output = try Self.hostCall(Syscall.pipe)
            let error = try Self.hostCall(Syscall.pipe)
            childEnds += [output.write, error.write]
            launched.standardOutput = output.read
            launched.standardError = error.read
            plan.raw.stdout_fd = output.write
            plan.raw.stderr_fd = error.write
            if streams == .standardInput {
                // stdin: a pipe the caller writes and closes.
                let input = try Self.hostCall(Syscall.pipe)
                childEnds.append(input.read)
                launched.standardInput = input.write
                plan.raw.stdin_fd = input.read
            }
        }
        // From here the caller owns them (closed below if the start fails).
        launched.descriptors = [launched.standardOutput, launched.standardError, launched.standardInput].filter { $0 >= 0 }
        defer { if launched.pid < 0 { launched.descriptors.forEach(Syscall.close) } }

        var namespaces = Int32(SHOAL_CLONE_NEWIPC | SHOAL_CLONE_NEWUTS | SHOAL_CLONE_NEWPID | SHOAL_CLONE_NEWNS)
        if state.spec.network != .host { namespaces |= Int32(SHOAL_CLONE_NEWNET) }
        if state.spec.userNamespace != nil { namespaces |= Int32(SHOAL_CLONE_NEWUSER) }

        plan.raw.clone_flags = state.spec.userNamespace != nil ? Int32(SHOAL_CLONE_NEWUSER) : 0
        plan.setProcess(
            command: exec.command,
            environment: Self.environment(state.spec, user: user, extra: exec.environment), user: user,
            workingDirectory: exec.workingDirectory ?? state.spec.workingDirectory,
            capabilities: state.spec.capabilities, noNewPrivileges: state.spec.noNewPrivileges,
            limits: state.spec.resourceLimits)
        // setns(pidfd, flags) joins them all at once (Linux 5.8).
        plan.raw.join_namespaces = UnsafePointer(plan.array([ShoalNamespaceFd(fd: pidfd, type: namespaces)]))
        plan.raw.join_count = 1
        plan.raw.cgroup_procs_fds = UnsafePointer(plan.array(procs))
        plan.raw.cgroup_procs_count = procs.count
        plan.raw.root_fd = root
        plan.raw.sync_fd = report.write
        plan.raw.error_fd = failure.write

        let helper = withExtendedLifetime(plan) { shoal_spawn_exec(&plan.raw) }
        childEnds.forEach(Syscall.close)
        childEnds = []
        if helper < 0 {
            throw RuntimeError.hostSetupFailed(SystemError(call: "clone", errno: -helper, path: "exec in \(id)"))
        }
        var helperStatus: Int32 = 0
        while waitpid(helper, &helperStatus, 0) < 0 && errno == EINTR {}
        let reported = (try? Syscall.readAll(report.read)) ?? []
        let process: Int32? = reported.count == 4
            ? reported.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
            : nil
        if let failed = try Self.readFailure(failure.read) {
            if let process { Self.reap(process) }
            throw failed
        }
        guard let process else {
            throw RuntimeError.hostSetupFailed(SystemError(call: "clone", errno: EPROTO, path: "exec helper reported no pid"))
        }
        if launched.consoleSocket >= 0 {
            // Sent before the process's execve, which the failure pipe's end of file confirmed.
            let master = shoal_receive_fd(launched.consoleSocket)
            guard master >= 0 else {
                Glibc.kill(process, SIGKILL)
                Self.reap(process)
                throw RuntimeError.hostSetupFailed(SystemError(call: "recvmsg", errno: shoal_errno() == 0 ? EPROTO : shoal_errno(), path: "exec terminal"))
            }
            launched.terminal = master
            launched.descriptors.append(master)
        }
        launched.pid = process
        return launched
    }

    @discardableResult
    static func reap(_ pid: Int32) -> ExitStatus {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .unknown }
        }
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(signal)
    }

    /// Reads two pipes to end of file without letting either fill up, or
    /// until `deadline` (then `timedOut`).
    static func drainBoth(_ first: Int32, _ second: Int32, until deadline: ContinuousClock.Instant? = nil)
        -> (Data, Data, timedOut: Bool)
    {
        var buffers = [Data(), Data()]
        var open = [first, second]
        var chunk = [UInt8](repeating: 0, count: 65536)
        while open.contains(where: { $0 >= 0 }) {
            var descriptors = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            var timeout: Int32 = -1
            if let deadline {
                let remaining = deadline - ContinuousClock.now
                if remaining <= .zero { return (buffers[0], buffers[1], true) }
                timeout = Int32(clamping: max(1, remaining.components.seconds * 1000
                    + remaining.components.attoseconds / 1_000_000_000_000_000))
            }
            if poll(&descriptors, 2, timeout) < 0 {
                if errno == EINTR { continue }
                break
            }
            for index in 0..<2 where open[index] >= 0 && descriptors[index].revents != 0 {
                let count = chunk.withUnsafeMutableBytes { read(open[index], $0.baseAddress, $0.count) }
                if count > 0 {
                    buffers[index].append(contentsOf: chunk[0..<count])
                } else if count == 0 || errno != EINTR {
                    open[index] = -1  // the caller closes the descriptor
                }
            }
        }
        return (buffers[0], buffers[1], false)
    }
}

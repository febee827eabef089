import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer
import Foundation

/// The containers of one host: create, start, wait, stop, kill, exec,
/// delete; state under `stateDirectory`, so a restarted daemon re-adopts
/// what still runs (by pid + process start time).
///
/// Each container's init is the child of its own small monitor process
/// (shoal-monitor, as conmon/containerd-shim), which outlives the daemon,
/// reaps the init and writes its exit status and finish time to the
/// container's `exit-status` file; the runtime watches the monitor (pidfd).
/// So a container that exits while no daemon runs still shows its real exit
/// code, OOM kill and finish time to the restarted one. Without the monitor
/// program (``Configuration/monitorExecutable`` nil) the runtime is the
/// parent, and such an exit is ``ExitStatus/unknown``.
public final class ContainerRuntime: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Holds `containers/<id>/{state.json,container.log,*.fifo,...}`,
        /// `removing/` (deletions to finish) and `spare/` (emptied directories
        /// of deleted containers, for the next ones).
        public var stateDirectory: String
        public var cgroupRoot: String
        /// Containers live in `<cgroupRoot>/.../<cgroupParent>/<id>`.
        public var cgroupParent: String
        /// nil: detect from `cgroupRoot`.
        public var cgroupLayout: CgroupLayout?
        /// How long cgroup removal retries while the kernel tears it down.
        public var cgroupRemovalTimeout: Duration
        /// How many times the cleanup thread tries again a deleted
        /// container's cgroup that did not go within `cgroupRemovalTimeout`
        /// (its processes still exiting on a loaded machine) before the
        /// runtime gives up on it and says so in its log: once at once,
        /// then after waits that double from `cgroupRemovalRetryDelay`
        /// (at most ``ContainerRuntime/cgroupRemovalRetryDelayLimit``).
        public var cgroupRemovalRetries: Int
        /// The wait before the second of those tries.
        public var cgroupRemovalRetryDelay: Duration
        /// Where the runtime says what it gave up on (one line each, no
        /// newline): standard error, the daemon's log, unless given.
        public var log: @Sendable (String) -> Void
        /// The node bridge of ``NetworkMode/bridge`` containers.
        public var bridge: BridgeConfiguration
        /// The shoal-monitor program that becomes each container's parent and
        /// records its exit, so a container that ends while no daemon runs
        /// still shows its real exit code. Default: `shoal-monitor` beside
        /// this process's executable when present; nil: the runtime is the
        /// parent (status `unknown` after a restart).
        public var monitorExecutable: String?
        /// How long a stopped container's veth may outlive its network
        /// namespace's last process (something else holds the namespace)
        /// before the runtime deletes it and releases its address.
        public var vethRemovalTimeout: Duration
        /// Bridge namespaces kept ready (veth attached, `eth0` up) so that a
        /// bridge container's start only adds its address; 0: made at each
        /// start. Made from the first bridge container on.
        public var warmNetworkNamespaces: Int
        /// Overlay roots of the image started last kept mounted for the next
        /// starts (see ``MountedRootPool``); 0: none.
        public var warmRootMounts = 0

        public init(
            stateDirectory: String,
            cgroupRoot: String = "/sys/fs/cgroup",
            cgroupParent: String = "shoal",
            cgroupLayout: CgroupLayout? = nil,
            cgroupRemovalTimeout: Duration = .seconds(5),
            bridge: BridgeConfiguration = BridgeConfiguration(),
            monitorExecutable: String? = ContainerRuntime.bundledMonitorExecutable(),
            vethRemovalTimeout: Duration = .seconds(2),
            warmNetworkNamespaces: Int = 4,
            cgroupRemovalRetries: Int = 10,
            cgroupRemovalRetryDelay: Duration = .seconds(1),
            log: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(("shoal runtime: " + $0 + "\n").utf8)) }
        ) {
            self.log = log
            self.cgroupRemovalRetries = cgroupRemovalRetries
            self.cgroupRemovalRetryDelay = cgroupRemovalRetryDelay
            self.warmNetworkNamespaces = warmNetworkNamespaces
            self.vethRemovalTimeout = vethRemovalTimeout
            self.bridge = bridge
            self.monitorExecutable = monitorExecutable
            self.stateDirectory = stateDirectory
            self.cgroupRoot = cgroupRoot
            self.cgroupParent = cgroupParent
            self.cgroupLayout = cgroupLayout
            self.cgroupRemovalTimeout = cgroupRemovalTimeout
        }
    }

    /// `shoal-monitor` in the directory of this process's executable (where
    /// `swift build` puts it beside `shoal` and the test bundle), or nil.
    public static func bundledMonitorExecutable() -> String? {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let path = (executable as NSString).deletingLastPathComponent + "/shoal-monitor"
        return access(path, X_OK) == 0 ? path : nil
    }

    /// `$PATH` when the spec's environment has none (Docker's default).
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    /// How long `stop` waits for the exit after SIGKILL before giving up.
    static let killWaitTimeout: Duration = .seconds(30)
    /// How long one retry of a deleted container's cgroup waits for the
    /// kernel: it runs on the cleanup thread, where other removals wait.
    static let cgroupRemovalRetryTimeout: Duration = .milliseconds(200)
    /// The longest wait between two retries of a deleted container's cgroup
    /// (with the defaults, the runtime gives up about 4 minutes after the delete).
    public static let cgroupRemovalRetryDelayLimit: Duration = .seconds(60)

    public let configuration: Configuration
    public let cgroupLayout: CgroupLayout
    private let lock = NSLock()
    private var containers: [String: Container] = [:]
    /// Overlay roots mounted ahead of the starts that take them.
    let rootPool: MountedRootPool
    /// Ids whose create is under way (guarded by `lock`).
    private var creating: Set<String> = []
    let bridge: NodeBridge
    let leases: AddressLeases
    /// Veths, leases and files of stopped and deleted containers, released
    /// after the calls that stopped or deleted them have returned.
    let cleanup = CleanupQueue(name: "shoal-cleanup")

    /// Emptied directories of deleted containers, reused by the next ones
    /// (see ``SpareDirectories``): their log, network files, FIFOs and exit
    /// record stay, emptied.
    let spares: SpareDirectories
    /// A container's state in its directory (``ContainerState``).
    static let stateFileName = "state.json"
    /// How many emptied container directories are kept for reuse.
    static let spareDirectoriesKept = 128

    /// Makes spare container directories in the background, up to `count`
    /// (at most ``spareDirectoriesKept``), laid out as a kept one is: see
    /// ``SpareDirectories/prefill(to:mode:populate:)``.
    public func prefillSpareDirectories(_ count: Int) {
        let files: [(String, mode_t)] = [(ContainerLogFile.fileName, 0o600), ("hosts", 0o644), ("hostname", 0o644), ("resolv.conf", 0o644),
                                        (ExitRecord.fileName, 0o600), (Self.stateFileName, 0o600), (Self.stateFileName + ".tmp", 0o600)]
        spares.prefill(to: count, mode: 0o700) { path in
            for fifo in ["stdout.fifo", "stderr.fifo"] { _ = mkfifo(path + "/" + fifo, 0o600) }
            for (name, mode) in files {
                let descriptor = open(path + "/" + name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
                if descriptor >= 0 { Syscall.close(descriptor) }
            }
        }
    }

    var containersDirectory: String { configuration.stateDirectory + "/containers" }
    /// The layer every image-based container gets on top of its image (see ``MountPointLayer``).
    var mountPointLayer: String { configuration.stateDirectory + "/" + MountPointLayer.directoryName }
    /// Deleted containers' directories, until their cleanup is finished.
    var removingDirectory: String { configuration.stateDirectory + "/removing" }

    /// Detects the cgroup layout, loads every container under the state
    /// directory and re-adopts the running ones (a container whose process is
    /// gone, or whose pid now belongs to another process, is marked exited).
    public init(configuration: Configuration) throws {
        if let problem = configuration.bridge.problem {
            throw RuntimeError.bridgeConflict(bridge: configuration.bridge.name, reason: problem)
        }
        self.configuration = configuration
        self.bridge = NodeBridge(
            configuration: configuration.bridge, owner: "state \(configuration.stateDirectory)", warmNamespaces: configuration.warmNetworkNamespaces)
        self.spares = SpareDirectories(
            directory: configuration.stateDirectory + "/spare", limit: Self.spareDirectoriesKept,
            reusable: [ContainerLogFile.fileName, "hosts", "hostname", "resolv.conf", "stdout.fifo", "stderr.fifo", ExitRecord.fileName,
                       Self.stateFileName, Self.stateFileName + ".tmp"],
            // The others are written over before they are read (overwriting
            // beats emptying, see Syscall.overwriteFile): the state files at
            // create, the network files and the exit record at start.
            emptied: [ContainerLogFile.fileName])
        self.rootPool = MountedRootPool(directory: configuration.stateDirectory + "/root-pool", capacity: configuration.warmRootMounts)
        self.leases = AddressLeases(
            directory: Self.leaseDirectory(configuration.stateDirectory, bridge: configuration.bridge.name), bridge: configuration.bridge)
        do throws(SystemError) {
            if let layout = configuration.cgroupLayout {
                self.cgroupLayout = layout
            } else {
                self.cgroupLayout = try CgroupLayout.detect(root: configuration.cgroupRoot)
            }
            try Syscall.makeDirectories(configuration.stateDirectory + "/containers", mode: 0o700)
            try Syscall.makeDirectories(configuration.stateDirectory + "/removing", mode: 0o700)
            try MountPointLayer.ensure(at: mountPointLayer)
        } catch {
            throw RuntimeError.hostSetupFailed(error)
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: containersDirectory)) ?? []
        for name in names.sorted() {
            let directory = containersDirectory + "/" + name
            let statePath = directory + "/" + Self.stateFileName
            // After a machine crash the newest state can be empty (written, not
            // yet flushed); the one before it is the swapped-out temporary.
            // A state of another id is what a reused directory held before
            // (spare directories keep their state files): not this container's.
            func own(_ state: ContainerState?) -> ContainerState? { state?.id == name ? state : nil }
            let previous = own(try? ContainerState.read(from: statePath + ".tmp"))
            let newestRead = try? ContainerState.read(from: statePath)
            var info = stat()
            let unwritten = stat(statePath, &info) != 0 ? errno == ENOENT : info.st_size == 0
            guard let state = own(newestRead) ?? previous else {
                // A create cut short before its state was written: nothing to
                // adopt. (An unreadable state is left as it is.)
                if unwritten || newestRead != nil { spares.keep(directory) }
                continue
            }
            let container = Container(state: state, directory: directory, cgroup: cgroup(for: state))
            containers[state.id] = container
            if state.status.hasProcess { adopt(container) }
        }
        // Removals a previous runtime did not finish: their leases stay
        // taken until their veths are gone.
        var removing: Set<String> = []
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: removingDirectory)) ?? []).sorted() {
            let directory = removingDirectory + "/" + name
            let state = try? ContainerState.read(from: directory + "/state.json")
            if let state, let address = state.network?.address { removing.insert(state.id + " " + address) }
            // Whether its cgroup went is not recorded: trying again costs an rmdir.
            cleanup.enqueue { [weak self] in self?.finishRemoval(directory: directory, state: state, cgroupLeft: true) }
        }
        // A lease whose container has no state (a crash between lease and
        // state write, a state directory cleaned by hand) is nobody's.
        leases.releaseAll { [containers] holder, address in
            containers[holder]?.state.network?.address != IPv4Subnet.format(address)
                && !removing.contains(holder + " " + IPv4Subnet.format(address))
        }
        // Exited while no runtime watched, its veth not yet seen gone.
        for id in containers.keys.sorted() where containers[id]?.state.status == .exited {
            if let container = containers[id] { detachNetwork(container) }
        }
    }

    deinit {
        detach()
    }

    /// Stops watching every container without stopping any (daemon
    /// shutdown); their published ports close (a restarted runtime binds
    /// them again).
    public func detach() {
        lock.lock()
        let all = Array(containers.values)
        lock.unlock()
        for container in all {
            container.replaceHealthChecker(nil)
            container.monitor?.detach()
            container.monitor = nil
            closePorts(container)
        }
        cleanup.stop()
        bridge.release()
        rootPool.stop()
    }

    func cgroup(for state: ContainerState) -> any Cgroup {
        state.cgroupLayout.makeCgroup(root: configuration.cgroupRoot, parent: state.cgroupParent, name: state.id)
    }

    // MARK: - Lookup

    public func container(_ id: String) -> Container? {
        lock.lock()
        defer { lock.unlock() }
        return containers[id]
    }

    /// All containers, sorted by id.
    public func list() -> [ContainerState] {
        lock.lock()
        let all = Array(containers.values)
        lock.unlock()
        return all.map(\.state).sorted { $0.id < $1.id }
    }

    func lookup(_ id: String) throws -> Container {
        guard let container = container(id) else { throw RuntimeError.noSuchContainer(id) }
        return container
    }

    // MARK: - Create

    /// Validates `spec`, resolves its user from the root filesystem and
    /// records the container as `created`. Nothing runs yet.
    @discardableResult
    public func create(_ spec: ContainerSpec) throws -> Container {
        try Self.validate(spec)
        let user = try ResolvedUser.resolve(spec.user, layers: spec.rootFilesystem.layersTopFirst)
        let directory = containersDirectory + "/" + spec.id
        // The id is reserved under the lock, the files made outside it:
        // concurrent creates of other containers do not queue on them.
        try lock.withLock { () throws in
            guard containers[spec.id] == nil, !creating.contains(spec.id) else { throw RuntimeError.containerExists(spec.id) }
            creating.insert(spec.id)
        }
        var created: Container?
        defer {
            lock.withLock {
                creating.remove(spec.id)
                if let created { containers[spec.id] = created }
            }
        }
        if !spares.take(to: directory) && mkdir(directory, 0o700) != 0 {
            throw RuntimeError.hostSetupFailed(SystemError(call: "mkdir", errno: errno, path: directory))
        }
        let network: NetworkAttachment?
        do {
            network = try leaseAddress(spec)
        } catch {
            spares.keep(directory)
            throw error
        }
        // The (empty) log exists from create on, so a reader can open it
        // before the first start and keep reading after a delete.
        let log = open(directory + "/" + ContainerLogFile.fileName, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        if log >= 0 { Syscall.close(log) }
        let state = ContainerState(
            spec: spec, status: .created, user: user, cgroupLayout: cgroupLayout,
            cgroupParent: configuration.cgroupParent, pid: nil, processStartTicks: nil, exitStatus: nil,
            oomKilled: false, startError: nil, createdAt: Date(), startedAt: nil, finishedAt: nil, network: network)
        let container = Container(state: state, directory: directory, cgroup: cgroup(for: state))
        container.update { _ in }  // persist
        created = container
        return container
    }

    /// Flushes what `create` wrote of `id` (its state file, its directory's
    /// entry) to disk, so a machine that crashes later still knows the
    /// container at boot (a restart policy brings it back, as Docker's does).
    /// For containers that outlive their run; a `--rm` one need not pay it.
    public func synchronize(_ id: String) throws {
        let container = try lookup(id)
        for path in [container.directory + "/" + Self.stateFileName, container.directory, containersDirectory] {
            try Self.hostCall { () throws(SystemError) in
                let descriptor = try Syscall.open(path, O_RDONLY)
                defer { Syscall.close(descriptor) }
                try Syscall.run("fsync", path: path) { fsync(descriptor) }
            }
        }
    }

    /// `create` + `start`. A container whose start failed stays recorded as
    /// exited with the error.
    @discardableResult
    public func run(_ spec: ContainerSpec) throws -> Container {
        let container = try create(spec)
        try start(spec.id)
        return container
    }

    static func validate(_ spec: ContainerSpec) throws {
        let id = spec.id
        guard !id.isEmpty, id.count <= 128, !id.hasPrefix("."),
              id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
        else { throw RuntimeError.invalidSpec("id \"\(id)\" must be 1-128 of [A-Za-z0-9_.-], not starting with a dot") }
        guard let first = spec.command.first, !first.isEmpty else {
            throw RuntimeError.invalidSpec("no command: give the program to run")
        }
        guard spec.mounts.count + networkFileCount <= SpawnPlan.maxBindMounts else {
            throw RuntimeError.invalidSpec("\(spec.mounts.count) bind mounts, at most \(SpawnPlan.maxBindMounts - networkFileCount)")
        }
        for mount in spec.mounts {
            guard mount.destination.hasPrefix("/") else {
                throw RuntimeError.invalidSpec("mount destination \(mount.destination) must be absolute")
            }
            guard Syscall.exists(mount.source) else { throw RuntimeError.invalidSpec("mount source \(mount.source) does not exist") }
        }
        switch spec.rootFilesystem {
        case .directory(let path):
            guard Syscall.exists(path) else { throw RuntimeError.rootFilesystemNotFound(path) }
        case .overlay(let lower, let upper, let work, let mountPoint):
            guard !lower.isEmpty else { throw RuntimeError.invalidSpec("overlay needs at least one lower directory") }
            for path in lower + [upper, work, mountPoint] where path.contains(",") || path.contains(":") {
                throw RuntimeError.invalidSpec("overlay path \(path) contains ',' or ':', which overlayfs options cannot carry")
            }
            for path in lower where !Syscall.exists(path) { throw RuntimeError.rootFilesystemNotFound(path) }
            guard overlayOptions(lower: lower, upper: upper, work: work).utf8.count < 4000 else {
                throw RuntimeError.invalidSpec("overlay options exceed one page: use shorter layer paths")
            }
        }
        if let problem = spec.healthCheck?.problem { throw RuntimeError.invalidSpec(problem) }
        if let hostname = spec.hostname, hostname.utf8.count > 64 {
            throw RuntimeError.invalidSpec("hostname longer than 64 bytes")
        }
        try validateNetwork(spec)
    }

    /// Published ports and links need the bridge; ports must be on an IPv4
    /// host address, each host address, port and transport bound once.
    static func validateNetwork(_ spec: ContainerSpec) throws {
        if spec.network != .bridge {
            if !spec.publishedPorts.isEmpty {
                throw RuntimeError.invalidSpec("published ports need --network bridge (with --network \(spec.network.rawValue) there is nothing to forward to)")
            }
            if !spec.links.isEmpty {
                throw RuntimeError.invalidSpec("links need --network bridge (with --network \(spec.network.rawValue) the container has no bridge address)")
            }
        }
        var bound: Set<String> = []
        for port in spec.publishedPorts {
            guard IPv4Subnet.parseAddress(port.hostAddress) != nil else {
                throw RuntimeError.invalidSpec("host address \"\(port.hostAddress)\" of a published port must be an IPv4 address such as 0.0.0.0 or 127.0.0.1")
            }
            guard port.containerPort != 0 else {
                throw RuntimeError.invalidSpec("container port 0 cannot be published: give the port the container listens on")
            }
            if port.hostPort != 0, !bound.insert("\(port.hostAddress):\(port.hostPort)/\(port.transport.rawValue)").inserted {
                throw RuntimeError.invalidSpec("host port \(port.hostAddress):\(port.hostPort)/\(port.transport.rawValue) is published twice")
            }
        }
        for link in spec.links {
            guard link.container != spec.id else { throw RuntimeError.invalidSpec("container \(spec.id) cannot link to itself") }
            if let alias = link.alias {
                guard isHostName(alias) else {
                    throw RuntimeError.invalidSpec("link alias \"\(alias)\" must be a host name: letters, digits, '-' and '.', at most 63 bytes")
                }
            }
        }
    }

    /// A name /etc/hosts can carry: [A-Za-z0-9._-], 1-63 bytes, no leading '-' or '.'.
    static func isHostName(_ name: String) -> Bool {
        guard let first = name.first, first != "-", first != ".", name.utf8.count <= 63 else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") }
    }

    static func overlayOptions(lower: [String], upper: String, work: String) -> String {
        "lowerdir=\(lower.joined(separator: ":")),upperdir=\(upper),workdir=\(work)"
    }

    /// The environment the process sees: the spec's, plus PATH, HOSTNAME
    /// and HOME when missing.
    static func environment(_ spec: ContainerSpec, user: ResolvedUser, extra: [String] = []) -> [String] {
        var environment = spec.environment + extra
        func has(_ name: String) -> Bool { environment.contains { $0.hasPrefix(name + "=") } }
        if !has("PATH") { environment.insert("PATH=" + defaultPath, at: 0) }
        if !has("HOSTNAME") { environment.append("HOSTNAME=" + hostname(spec)) }
        if !has("HOME") { environment.append("HOME=" + user.home) }
        return environment
    }

    // MARK: - Wait, stop, kill, delete

    /// Waits for the container to exit; nil when `timeout` passed first.
    public func wait(_ id: String, timeout: Duration? = nil) throws -> ExitStatus? {
        try lookup(id).wait(timeout: timeout)
    }

    /// Sends `signal` to the container's init. A paused container is thawed
    /// after the signal so that it can act on it (as Docker does).
    public func kill(_ id: String, signal: Int32 = SIGKILL) throws {
        let container = try lookup(id)
        let state = container.state
        guard state.status.hasProcess, let pid = state.pid else {
            throw RuntimeError.invalidState(id: id, state: state.status, operation: "signal")
        }
        try signalProcess(pid: pid, startTicks: state.processStartTicks, signal: signal)
        if state.status == .paused { try thaw(container) }
    }

    /// Makes an exited container startable again (`docker start` of a stopped
    /// container, restart policies): back to `created` with its spec,
    /// directory (log included) and writable layer kept; the next `start`
    /// begins a new run.
    public func prepareRestart(_ id: String) throws {
        let container = try lookup(id)
        guard container.state.status == .exited else {
            throw RuntimeError.invalidState(id: id, state: container.state.status, operation: "restart")
        }
        container.monitor?.detach()
        container.monitor = nil
        container.forgetCgroupRemoval()  // the start makes it again
        container.update { state in
            state.status = .created
            state.pid = nil
            state.processStartTicks = nil
            state.exitStatus = nil
            state.oomKilled = false
            state.startError = nil
            state.startedAt = nil
            state.finishedAt = nil
        }
    }

    /// Sends `signal` (SIGTERM by default), waits `gracePeriod`, then SIGKILL;
    /// returns the exit status. Stopping an exited container returns its status.
    @discardableResult
    public func stop(_ id: String, signal: Int32 = SIGTERM, gracePeriod: Duration = .seconds(10)) throws -> ExitStatus {
        let container = try lookup(id)
        let state = container.state
        switch state.status {
        case .created: throw RuntimeError.invalidState(id: id, state: .created, operation: "stop")
        case .exited: return state.exitStatus ?? .unknown
        case .running, .paused: break
        }
        if let pid = state.pid {
            try signalProcess(pid: pid, startTicks: state.processStartTicks, signal: signal)
        }
        if state.status == .paused { try thaw(container) }
        if let status = container.wait(timeout: gracePeriod) { return status }
        if let pid = state.pid {
            try signalProcess(pid: pid, startTicks: state.processStartTicks, signal: SIGKILL)
        }
        guard let status = container.wait(timeout: Self.killWaitTimeout) else {
            throw RuntimeError.hostSetupFailed(SystemError(call: "kill", errno: ETIMEDOUT, path: "container \(id)"))
        }
        return status
    }

    /// Signals through a pidfd, after checking the pid still is the
    /// container's process (same start time). A process already gone is fine.
    private func signalProcess(pid: Int32, startTicks: UInt64?, signal: Int32) throws {
        let pidfd = shoal_pidfd_open(pid)
        if pidfd < 0 { return }  // gone
        defer { Syscall.close(pidfd) }
        guard startTicks == nil || ProcessIdentity.startTicks(pid: pid) == startTicks else { return }
        if shoal_pidfd_send_signal(pidfd, signal) != 0 && shoal_errno() != ESRCH {
            throw RuntimeError.hostSetupFailed(SystemError(call: "pidfd_send_signal", errno: shoal_errno(), path: "pid \(pid)"))
        }
    }

    /// Removes a stopped container: its cgroup and its state directory (logs
    /// included). `force` kills a running one first.
    ///
    /// The container is gone when this returns (its id free, absent from
    /// ``list()``); its directory is moved under `removing/` in one rename,
    /// and the rest is finished on the cleanup thread, in order: its veth
    /// gone, then its lease released, then its files deleted. A runtime
    /// that stops first leaves that to the next one, which finishes every
    /// removal it finds there. ``awaitCleanup()`` waits for it.
    public func delete(_ id: String, force: Bool = false) throws {
        let container = try lookup(id)
        let status = container.state.status
        if status.hasProcess {
            guard force else { throw RuntimeError.invalidState(id: id, state: status, operation: "delete") }
            try stop(id, signal: SIGKILL, gracePeriod: .zero)
        }
        var timings = StepTimings("delete")
        defer { timings.report() }
        container.monitor?.detach()
        closePorts(container)
        // With the monitor detached, the exit's record is done, the cgroup's
        // removal included (``Container/recordExit``): tried again only if
        // that failed. Processes still exiting (a loaded machine) can hold
        // it past the timeout: the cleanup thread tries again later.
        let cgroupLeft: Bool
        do {
            if !container.cgroupRemoved { try container.cgroup.destroy(timeout: configuration.cgroupRemovalTimeout) }
            cgroupLeft = false
        } catch {
            cgroupLeft = true
        }
        timings.mark("cgroup")
        // Never recurse into a copy's mount (volumes may be bound under it).
        container.filesystemLock.withLock {
            Self.unmountStoppedRoot(container.directory + "/" + Self.copyMountDirectory)
            // Its root, when no finish took it away (the container was lost, or a start died mid-way).
            if let mountPoint = OverlayRootMount.mountPoint(of: container.state.spec) { OverlayRootMount.unmount(mountPoint) }
        }
        timings.mark("unmount")
        let state = container.state
        let removal = removingDirectory + "/" + id + "." + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let moved = rename(container.directory, removal) == 0
        timings.mark("rename")
        lock.lock()
        containers[id] = nil
        lock.unlock()
        if moved {
            cleanup.enqueue { [weak self] in self?.finishRemoval(directory: removal, state: state, cgroupLeft: cgroupLeft) }
        } else {
            finishRemoval(directory: container.directory, state: state, cgroupLeft: cgroupLeft)  // in place: nothing recorded it
        }
    }

    /// The end of a removal: the veth gone (the kernel deletes it with the
    /// container's network namespace), then the lease, then the cgroup if
    /// `delete` could not remove it, then the files.
    func finishRemoval(directory: String, state: ContainerState?, cgroupLeft: Bool) {
        if let hostInterface = state?.network?.hostInterface, !awaitRemoval(hostInterface: hostInterface) {
            return  // stopping: the next runtime finishes it
        }
        if let state { releaseAddress(state) }
        guard cgroupLeft, let state else {
            spares.keep(directory)
            return
        }
        removeCgroup(of: state, thenFiles: directory, attempt: 1)
    }

    /// Removes a deleted container's cgroup, then its files; while the
    /// cgroup stays busy, tries again later (``Configuration/cgroupRemovalRetries``
    /// tries in all, waiting longer each time). The files stay meanwhile:
    /// they are how a restarted runtime knows to try again. Given up, the
    /// cgroup is named in the log and the files go.
    func removeCgroup(of state: ContainerState, thenFiles directory: String, attempt: Int) {
        let cgroup = cgroup(for: state)
        do {
            try cgroup.destroy(timeout: min(configuration.cgroupRemovalTimeout, Self.cgroupRemovalRetryTimeout))
        } catch {
            if attempt < configuration.cgroupRemovalRetries {
                let delay = min(configuration.cgroupRemovalRetryDelay * (1 << min(attempt - 1, 20)), Self.cgroupRemovalRetryDelayLimit)
                cleanup.enqueue(after: delay) { [weak self] in self?.removeCgroup(of: state, thenFiles: directory, attempt: attempt + 1) }
                return
            }
            let left = cgroup.directories.filter { Syscall.exists($0) }.joined(separator: " ")
            configuration.log("gave up removing the cgroup of deleted container \(state.id) after \(attempt) tries: \(error); "
                + "left behind: \(left) (remove it with rmdir once its processes have exited)")
        }
        spares.keep(directory)
    }

    /// Blocks until the cleanups queued so far (veths, leases and files of
    /// stopped and deleted containers) are done.
    public func awaitCleanup() {
        cleanup.drain()
    }

    /// Blocks until every removal begun so far is finished, the later tries
    /// of busy cgroups included (``awaitCleanup()`` does not wait for a try
    /// still to come), or `timeout` has passed; whether they all finished.
    /// For whoever tears a runtime down and wants nothing left behind
    /// (tests, tools): ``detach()`` leaves unfinished ones to the next runtime.
    public func awaitRemovals(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            cleanup.drain()
            if ((try? FileManager.default.contentsOfDirectory(atPath: removingDirectory)) ?? []).isEmpty { return true }
            if ContinuousClock.now >= deadline || cleanup.isStopped { return false }
            usleep(20_000)
        }
    }

    /// What the container wrote so far, per stream.
    public func logs(_ id: String) throws -> (standardOutput: String, standardError: String) {
        var output = "", error = ""
        for entry in try logEntries(id) {
            if entry.stream == "stderr" { error += entry.log } else { output += entry.log }
        }
        return (output, error)
    }

    /// Every line the container wrote that its log still keeps, oldest
    /// first (kept after it exits, removed with it).
    public func logEntries(_ id: String) throws -> [LogEntry] {
        let container = try lookup(id)
        return ContainerLogFile.entries(directory: container.directory, maxFiles: container.state.spec.logging?.maxFiles ?? 1)
    }

    /// Usage of a running container's cgroup.
    public func statistics(_ id: String) throws -> CgroupStatistics {
        try lookup(id).cgroup.statistics()
    }

    // MARK: - Exit handling and adoption

    /// Called once the container's init is gone (by the monitor thread, or
    /// at adoption). `reaped` is what waitid said about the process watched:
    /// the init itself, or its shoal-monitor, whose `exit-status` record
    /// then holds the init's real status and finish time.
    func finish(_ container: Container, reaped: ExitStatus) {
        var timings = StepTimings("finish")
        defer { timings.report() }
        container.replaceHealthChecker(nil)
        closePorts(container)
        let monitored = container.state.monitorPid != nil
        let record = ExitRecord.read(directory: container.directory)
        // Read before the cgroup goes: the OOM count lives in it.
        let oomKilled = container.cgroup.oomKillCount() > 0
        timings.mark("read")
        // Waiters learn the exit first; the state's write and then the
        // cgroup's removal follow (the write first: a daemon that dies in
        // between still finds the OOM count in the cgroup). A delete or
        // restart of the container waits for both (see ``Container/recordExit``).
        container.recordExit({ state in
            state.status = .exited
            state.exitStatus = record?.status ?? (monitored ? .unknown : reaped)
            state.oomKilled = oomKilled
            state.finishedAt = record?.finishedAt ?? Date()
            state.network?.ports = []
        }, removeCgroup: { [configuration] in
            timings.mark("record")  // published, then written
            do {
                try container.cgroup.destroy(timeout: configuration.cgroupRemovalTimeout)
                return true
            } catch {
                return false
            }
        })
        timings.mark("cgroup")
        // After the exit is recorded, and off this thread: the veth goes
        // with the network namespace, and waiters need not wait for it.
        detachNetwork(container)
        releaseRoot(container)
    }

    /// Unmounts an exited container's overlay root (``OverlayRootMount``)
    /// on a pool thread, after its exit is published: the overlay's teardown
    /// takes about half a millisecond. Whoever needs the layers before that
    /// (a copy from the stopped container, its next start, delete) holds
    /// the filesystem lock and unmounts it first; unmounting twice is a no-op.
    func releaseRoot(_ container: Container) {
        guard let mountPoint = OverlayRootMount.mountPoint(of: container.state.spec) else { return }
        BlockingThreadPool.shared.run { [container] in
            container.filesystemLock.withLock {
                if !container.state.status.hasProcess { OverlayRootMount.unmount(mountPoint) }
            }
        }
    }

    /// Re-attaches to a container a previous runtime started: watches its
    /// shoal-monitor (or, without one, its init). One that ended meanwhile
    /// is finished from its monitor's exit record.
    private func adopt(_ container: Container) {
        let state = container.state
        let watched = state.monitorPid.map { ($0, state.monitorStartTicks) } ?? state.pid.map { ($0, state.processStartTicks) }
        guard let (pid, recordedTicks) = watched, let ticks = recordedTicks,
              ProcessIdentity.startTicks(pid: pid) == ticks
        else { return markLost(container) }
        let pidfd = shoal_pidfd_open(pid)
        // Checked again after opening: the pidfd now pins this exact process.
        guard pidfd >= 0, ProcessIdentity.startTicks(pid: pid) == ticks else {
            Syscall.close(pidfd)
            return markLost(container)
        }
        // Already exited (a zombie of ours): finish now, so the new runtime's
        // first answer is the final state rather than a moment of "running".
        var readiness = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        if poll(&readiness, 1, 0) == 1 {
            var code: Int32 = 0
            var value: Int32 = 0
            let reaped: ExitStatus = shoal_waitid_pidfd(pidfd, &code, &value, WEXITED) == 0 && code == Int32(CLD_EXITED)
                ? .exited(value) : (code == Int32(CLD_KILLED) || code == Int32(CLD_DUMPED) ? .signaled(value) : .unknown)
            Syscall.close(pidfd)
            return finish(container, reaped: reaped)
        }
        reopenPorts(container)
        do {
            let log = try ContainerLogFile(directory: container.directory, options: state.spec.logging ?? LogOptions())
            let streams = try ["stdout", "stderr"].map { name throws -> ContainerMonitor.LogStream in
                .init(fifo: try Syscall.open(container.directory + "/\(name).fifo", O_RDONLY | O_NONBLOCK), name: name)
            }
            try startMonitor(container, pidfd: pidfd, streams: streams, log: log)
        } catch {
            // Still watch the exit, without logs.
            try? startMonitor(container, pidfd: pidfd, streams: [], log: nil)
        }
        startHealthChecks(container)
    }

    /// The watched process is gone: the exit record (when a monitor wrote
    /// one) gives the status, else it is unknown.
    private func markLost(_ container: Container) {
        // A monitor that was our child (same process, new runtime) is a zombie to reap.
        if let monitorPid = container.state.monitorPid { _ = waitpid(monitorPid, nil, WNOHANG) }
        finish(container, reaped: .unknown)
    }

    /// Starts probing when the spec has a health check.
    func startHealthChecks(_ container: Container) {
        guard let check = container.state.spec.healthCheck else { return }
        container.replaceHealthChecker(HealthChecker(check: check, container: container, runtime: self))
    }

    func startMonitor(_ container: Container, pidfd: Int32, streams: [ContainerMonitor.LogStream], log: ContainerLogFile?) throws {
        let monitor = try ContainerMonitor(pidfd: pidfd, streams: streams, log: log, output: container.output,
                                           onOutput: { [container] in container.noteOutput() }) { [weak self, container] status in
            // Attached clients end once the exit is recorded (they report it).
            defer {
                container.input.reset()
                container.output.finish()
            }
            if let self {
                self.finish(container, reaped: status)
            } else {
                let record = ExitRecord.read(directory: container.directory)
                container.update { state in
                    state.status = .exited
                    state.exitStatus = record?.status ?? (state.monitorPid != nil ? .unknown : status)
                    state.finishedAt = record?.finishedAt ?? Date()
                }
            }
        }
        container.monitor = monitor
        monitor.start()
    }
}

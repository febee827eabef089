import Agent
import Foundation
import Images
import Posix
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// The node daemon's single-host engine (`shoal container ...`, as the
/// Docker engine): containers with names, images, volumes, restart policies
/// and `--rm`, on the node's one ``ContainerRuntime`` (which the agent
/// shares for its task containers).
///
/// ```
/// DIR/containers/              the runtime's state (and each container's log)
/// DIR/local/containers/ID.json what the engine adds: name, image, request, policy
/// DIR/local/rw/ID/             the writable layer (upper, work, merged)
/// DIR/local/rw-spare/          emptied layers of removed containers, for the next ones
/// DIR/volumes/NAME/_data       named volumes
/// ```
///
/// Every container's exit is watched by a thread that applies `--rm` and
/// the restart policy once per run.
public final class ContainerEngine: @unchecked Sendable {
    /// `--network` when none is given: Docker's (the node bridge).
    static let defaultNetwork = NetworkMode.bridge
    /// How often a watcher thread checks whether the engine stopped.
    static let watchPollInterval: Duration = .seconds(1)
    /// `--rm` containers whose exit codes are kept for a late `wait`.
    static let recentExitsKept = 128

    /// What the engine records about one container beyond the runtime's state.
    struct Record: Codable, Equatable, Sendable {
        var id: String
        var name: String
        var image: String
        /// The image manifest the container runs on (what `commit` builds
        /// on); nil in records written before it was kept.
        var imageDigest: String?
        var request: ContainerCreateRequest
        var createdAt: Date
        var restartPolicy: RestartPolicy
        var mounts: [ContainerInspectView.Mount]
        var entrypoint: [String]
        var cmd: [String]
        var restartCount = 0
        var stoppedByUser = false
        /// Set once a removal has begun (the container is out of view); a
        /// daemon that starts with such a record finishes the removal.
        var removal: Removal?
        /// `startedAt` of the last run whose exit was handled (once per run).
        var handledRun: Date?
    }

    public let runtime: ContainerRuntime
    /// The node's content store, pulling from a registry what it lacks (as `docker run` does).
    public let images: RegistryImageSource
    let volumes: VolumeStore
    let root: String
    /// Emptied writable layers (upper, work, merged) of removed containers,
    /// reused by the next ones (see ``SpareDirectories``).
    let rwSpares: SpareDirectories
    /// How many emptied writable layers are kept for reuse.
    static let spareLayersKept = 128
    /// Where a published port that names no address binds (dockerd's `--ip`).
    let defaultPublishAddress: String
    private let lock = NSLock()
    // Guarded by `lock`.
    private var records: [String: Record] = [:]
    private var reservedNames: Set<String> = []
    private var recentExits = RecentExits(capacity: ContainerEngine.recentExitsKept)
    private var stopped = false

    /// `warmDirectories`: spare container directories and writable layers
    /// made in the background at start (see ``SpareDirectories/prefill(to:mode:populate:)``).
    init(dataDirectory: String, cgroupParent: String, bridge: BridgeConfiguration, defaultPublishAddress: String = PortMapping.everyInterface,
         warmDirectories: Int = 0, warmRootMounts: Int = 0) throws {
        self.defaultPublishAddress = defaultPublishAddress
        // exec -i writes to a pipe whose reader may exit first: EPIPE, not death.
        signal(SIGPIPE, SIG_IGN)
        var configuration = ContainerRuntime.Configuration(stateDirectory: dataDirectory + "/containers", cgroupParent: cgroupParent, bridge: bridge)
        configuration.warmRootMounts = warmRootMounts
        runtime = try ContainerRuntime(configuration: configuration)
        images = RegistryImageSource(local: try LocalImageSource(store: try ContentStore(root: dataDirectory + "/images"), layerCacheDirectory: dataDirectory + "/layers"))
        volumes = try VolumeStore(root: dataDirectory + "/volumes")
        root = dataDirectory + "/local"
        var interruptedRemovals: [Record] = []
        try FileManager.default.createDirectory(atPath: root + "/containers", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/rw", withIntermediateDirectories: true)
        rwSpares = SpareDirectories(directory: root + "/rw-spare", limit: Self.spareLayersKept,
                                    reusable: ["upper", "work", "merged"])
        runtime.prefillSpareDirectories(warmDirectories)
        rwSpares.prefill(to: warmDirectories, mode: 0o755) { path in
            for name in ["upper", "work", "merged"] { _ = mkdir(path + "/" + name, SpareDirectories.directoryMode) }
        }
        for file in ((try? FileManager.default.contentsOfDirectory(atPath: root + "/containers")) ?? []).sorted() where file.hasSuffix(".json") {
            guard let data = FileManager.default.contents(atPath: root + "/containers/" + file) else { continue }
            if data.isEmpty {
                // Emptied by a machine crash (records are not synced, see `save`):
                // nothing to show; its runtime state goes below with the orphans.
                removeFiles(String(file.dropLast(".json".count)))
                continue
            }
            guard var record = try? JSONDecoder().decode(Record.self, from: data) else { continue }
            if record.removal != nil {
                interruptedRemovals.append(record)
                continue
            }
            guard let container = runtime.container(record.id) else {
                // The runtime's state is gone: so is the container. A `--rm`
                // one was being removed (its removal is not marked, see
                // `claimRemoval`): its anonymous volumes go too, as they would have.
                if record.request.autoRemove == true {
                    record.removal = Removal(anonymousVolumes: true)
                    interruptedRemovals.append(record)
                } else {
                    removeFiles(record.id)
                }
                continue
            }
            let state = container.state
            if record.request.autoRemove == true && state.status == .exited {
                // A `--rm` container that exited (while no daemon watched, or
                // its removal was cut short): removed now, its exit kept for `wait`.
                record.removal = Removal(anonymousVolumes: true)
                interruptedRemovals.append(record)
                recentExits.remember(Self.waitReply(state), keys: [record.id, record.name])
                continue
            }
            records[record.id] = record
        }
        // After the records are read: whether an anonymous volume is still used depends on them.
        for record in interruptedRemovals { finishRemoval(record) }
        removeOrphans(besides: Set(interruptedRemovals.map(\.id)))
        for id in records.keys.sorted() where runtime.container(id)?.state.status.hasProcess == true { watch(id) }
        applyRestartPoliciesAtStart()
    }

    /// Removes the engine's containers the runtime has but no record names
    /// (the runtime's state of a container whose record a crash lost or
    /// emptied, or of a create a crash cut short before its record was
    /// written): nobody could see, use or remove them. The agent's task
    /// containers (`task-...`) share the runtime and are left alone.
    private func removeOrphans(besides removing: Set<String>) {
        for state in runtime.list() where Self.isContainerID(state.id) && records[state.id] == nil && !removing.contains(state.id) {
            try? runtime.delete(state.id, force: true)
            removeFiles(state.id)
        }
    }

    /// Whether `text` has the form of the engine's ids (``randomID()``).
    static func isContainerID(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }

    /// Docker's rules when the daemon starts: a run that ended while no
    /// daemon watched (its monitor recorded the exit) is handled now, by
    /// `--rm` and the restart policy, as if it had just exited; and `always`
    /// brings back a container even if the user had stopped it (which only
    /// holds until the daemon restarts), where `unless-stopped` and
    /// `on-failure` leave it stopped. A container that never started stays
    /// as it is.
    private func applyRestartPoliciesAtStart() {
        for id in records.keys.sorted() {
            guard var record = records[id], let state = runtime.container(id)?.state, state.status == .exited, let run = state.startedAt else { continue }
            if record.restartPolicy.name == .always && record.stoppedByUser {
                record.stoppedByUser = false
                record.handledRun = nil
                records[id] = record
                save(record)
            }
            guard !Self.sameRun(record.handledRun, run) else { continue }
            // On its own thread: the policy's back-off sleeps.
            let thread = Thread { [weak self] in self?.exited(id, run: run, state: state) }
            thread.name = "shoal-restart-" + id.prefix(12)
            thread.start()
        }
    }

    /// Stops the watchers; containers keep running (a restarted daemon re-adopts them).
    func stop() {
        lock.withLock { stopped = true }
        runtime.detach()
    }

    private func recordPath(_ id: String) -> String { root + "/containers/" + id + ".json" }
    private func rwDirectory(_ id: String) -> String { root + "/rw/" + id }

    /// Writes the record atomically. Later saves (start, stop, exit) are not
    /// flushed (an fsync cost every `run` 0.5 ms or more per save, more while
    /// other writers keep the disk busy): they must outlive the daemon, whose
    /// writes sit in the kernel's page cache when it crashes. The save at the
    /// create of a container that outlives its run is (`synchronized`),
    /// together with the runtime's state (`ContainerRuntime.synchronize`) and
    /// both directory entries: a machine crash then does not lose the
    /// container, which a restart policy brings back at boot, as Docker's
    /// does. A `--rm` container's is not: nothing of it should outlive a
    /// crash. What a crash still leaves half, ``init`` removes: a record
    /// without the runtime's state, the runtime's state without a record, an
    /// emptied record.
    private func save(_ record: Record, synchronized: Bool = false) {
        try? Support.writeFile(record.encodedJSON, to: recordPath(record.id), mode: 0o600, synchronized: synchronized)
        if synchronized {
            let directory = open(root + "/containers", O_RDONLY | O_CLOEXEC)
            if directory >= 0 {
                fsync(directory)
                close(directory)
            }
        }
    }

    private func removeFiles(_ id: String) {
        unlink(recordPath(id))
        rwSpares.keep(rwDirectory(id))
    }

    /// Applies `change` to the record of `id` and persists it (unless it
    /// changed nothing: `start` of a container nobody stopped); nil if it is gone.
    @discardableResult
    private func update(_ id: String, _ change: (inout Record) -> Void) -> Record? {
        lock.withLock {
            guard let before = records[id] else { return nil }
            var record = before
            change(&record)
            guard record != before else { return record }
            records[id] = record
            save(record)
            return record
        }
    }

    // MARK: Lookup

    /// A full id, a name, or a unique prefix of an id (Docker's rules).
    func resolve(_ key: String) throws -> Record {
        let all = lock.withLock { Array(records.values) }
        if let exact = all.first(where: { $0.id == key || $0.name == key || "/" + $0.name == key }) { return exact }
        let matches = key.isEmpty ? [] : all.filter { $0.id.hasPrefix(key) }
        if matches.count == 1 { return matches[0] }
        if matches.count > 1 {
            throw APIError(status: 400, code: "ambiguous", message: "\(key) matches \(matches.count) containers", hint: "give more characters of the id, or the name")
        }
        throw APIError(status: 404, code: "not_found", message: "no such container: \(key)", hint: "list them with `shoal container ps -a`")
    }

    func container(_ record: Record) throws -> Container {
        guard let container = runtime.container(record.id) else {
            throw APIError(status: 404, code: "not_found", message: "no such container: \(record.name)", hint: "it was removed")
        }
        return container
    }

    func all() -> [Record] {
        lock.withLock { records.values.sorted { $0.createdAt > $1.createdAt } }
    }

    // MARK: Create

    func create(_ request: ContainerCreateRequest) async throws -> Record {
        guard !request.image.isEmpty else { throw APIError.invalid("image", "it is required: give the image to run") }
        var timings = StepTimings("engine-create")
        defer { timings.report() }
        let id = Self.randomID()
        let name = try reserveName(request.name, id: id)
        timings.mark("name")
        do {
            let record = try await build(request, id: id, name: name, timings: &timings)
            let lasting = request.autoRemove != true
            if lasting { try? runtime.synchronize(id) }
            lock.withLock {
                records[id] = record
                reservedNames.remove(name)
                save(record, synchronized: lasting)
            }
            timings.mark("save")
            return record
        } catch {
            lock.withLock { _ = reservedNames.remove(name) }
            throw error
        }
    }

    private func reserveName(_ requested: String?, id: String) throws -> String {
        try lock.withLock {
            let used = Set(records.values.map(\.name)).union(reservedNames)
            if let requested {
                let name = requested.hasPrefix("/") ? String(requested.dropFirst()) : requested
                guard ContainerOptions.isValidName(name) else {
                    throw APIError.invalid("--name", "'\(requested)' must be 2-128 of [a-zA-Z0-9_.-], starting with a letter or digit")
                }
                if let other = records.values.first(where: { $0.name == name }) {
                    throw APIError(status: 409, code: "name_in_use", message: "the container name \"\(name)\" is already in use by container \(other.id.prefix(12))",
                                   hint: "remove that container (`shoal container rm \(name)`) or pick another --name")
                }
                guard !reservedNames.contains(name) else {
                    throw APIError(status: 409, code: "name_in_use", message: "the container name \"\(name)\" is being used by a container being created", hint: "pick another --name")
                }
                reservedNames.insert(name)
                return name
            }
            var name = ContainerNames.generate()
            while used.contains(name) { name = ContainerNames.generate() }
            reservedNames.insert(name)
            return name
        }
    }

    private func build(_ request: ContainerCreateRequest, id: String, name: String, timings: inout StepTimings) async throws -> Record {
        let image: PreparedImage
        do {
            image = try await images.prepare(reference: request.image, progress: { _ in })
            timings.mark("image")
        } catch AgentError.imageNotFound(let reference) {
            throw APIError(status: 404, code: "no_such_image", message: "no such image: \(reference)",
                           hint: "import one with `shoal image import ROOTFS.tar \(reference)` or push it to a registry; `shoal image ls` lists them")
        } catch AgentError.pullFailed(let reference, let registry, let reason) {
            throw APIError(status: 404, code: "no_such_image", message: "no such image: \(reference) (not in this node's store, and pulling it from \(registry) failed: \(reason))",
                           hint: "import one with `shoal image import ROOTFS.tar \(reference)` or push it to the registry; `shoal image ls` lists them")
        } catch let error as AgentError {
            throw APIError(status: 400, code: "image_unusable", message: error.description, hint: "import the image again")
        }
        let config = image.config
        let entrypoint: [String]
        let cmd: [String]
        if let override = request.entrypoint {
            entrypoint = override.isEmpty ? [] : [override]
            cmd = request.command ?? []
        } else {
            entrypoint = config?.entrypoint ?? []
            cmd = (request.command?.isEmpty == false) ? request.command! : (config?.cmd ?? [])
        }
        let command = entrypoint + cmd
        guard !command.isEmpty else {
            throw APIError.invalid("command", "image \(request.image) has no entrypoint or cmd: give the command after the image name")
        }
        var limits = ResourceLimits()
        if let memory = request.memory { limits.memoryLimitBytes = try ContainerOptions.bytes(memory, flag: "--memory") }
        if let cpus = request.cpus {
            guard cpus > 0, cpus <= 1024 else { throw APIError.invalid("--cpus", "\(cpus) must be a positive number of CPUs such as 0.5 or 2") }
            limits.cpuQuotaMicroseconds = max(1000, ResourceLimits.cpus(cpus))
        }
        if let pids = request.pidsLimit {
            guard pids > 0 else { throw APIError.invalid("--pids-limit", "\(pids) must be a positive number of processes") }
            limits.pidsLimit = pids
        }
        let restartPolicy = try ContainerOptions.restartPolicy(request.restart)
        // Docker's stop signal: the flag, else the image's STOPSIGNAL; kept resolved.
        var request = request
        request.stopSignal = request.stopSignal ?? config?.stopSignal.flatMap { $0.isEmpty ? nil : $0 }
        if let signal = request.stopSignal { _ = try ContainerOptions.signal(signal, flag: "--stop-signal") }
        if let timeout = request.stopTimeout, timeout < 0 {
            throw APIError.invalid("--stop-timeout", "\(timeout) must be a number of seconds, 0 or more")
        }
        if restartPolicy.name != .no && request.autoRemove == true {
            throw APIError.invalid("--restart", "--rm and a restart policy exclude each other: a removed container cannot restart")
        }
        let network = try ContainerOptions.network(request.network)
        var ports = try (request.publish ?? []).map { try ContainerOptions.port($0, defaultAddress: defaultPublishAddress) }
        if request.publishAll == true {
            ports += ContainerOptions.exposedPorts(Array((config?.exposedPorts ?? [:]).keys), address: defaultPublishAddress)
        }
        let links = try (request.links ?? []).map { text -> ContainerLink in
            let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
            let target = try resolve(parts[0])
            return ContainerLink(container: target.id, alias: parts.count > 1 ? parts[1] : target.name)
        }
        let logging = try ContainerOptions.logging(request.logOptions)
        let healthCheck = try Self.healthCheck(request, image: config?.healthcheck)
        var environment = config?.env ?? []
        for entry in request.environment ?? [] {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw APIError.invalid("-e", "'\(entry)' must be NAME=value")
            }
            // A later NAME= replaces the image's.
            let key = entry[..<equals]
            environment.removeAll { $0.hasPrefix(key + "=") }
            environment.append(entry)
        }
        let rw = rwDirectory(id)
        _ = rwSpares.take(to: rw)  // else the runtime makes it at the first start
        let user = request.user ?? config?.user.flatMap { $0.isEmpty ? nil : $0 }
        let workdir = request.workingDirectory ?? config?.workingDir.flatMap { $0.isEmpty ? nil : $0 }
        // Volumes last: anonymous ones are created here and removed again if the create fails.
        var mounts = try resolveMounts(request)
        do {
            mounts += try imageVolumes(Array((config?.volumes ?? [:]).keys), besides: mounts, image: request.image)
        } catch {
            removeAnonymousVolumes(mounts)
            throw error
        }
        let spec = ContainerSpec(
            id: id,
            rootFilesystem: .overlay(lowerDirectories: image.lowerDirectories, upperDirectory: rw + "/upper", workDirectory: rw + "/work", mountPoint: rw + "/merged"),
            command: command, environment: environment, user: user, workingDirectory: workdir,
            hostname: request.hostname ?? String(id.prefix(12)), network: network, limits: limits,
            mounts: mounts.map { BindMount(source: $0.Source, destination: $0.Destination, readOnly: !$0.RW) },
            publishedPorts: ports, links: links, logging: logging, healthCheck: healthCheck,
            stdio: try ContainerOptions.stdio(request))
        timings.mark("options")
        do {
            try runtime.create(spec)
            timings.mark("runtime")
        } catch {
            try? FileManager.default.removeItem(atPath: rw)
            removeAnonymousVolumes(mounts)
            throw Self.apiError(error, name: name)
        }
        do {
            try seedVolumes(id, mounts: mounts)
        } catch {
            try? runtime.delete(id, force: true)
            try? FileManager.default.removeItem(atPath: rw)
            removeAnonymousVolumes(mounts)
            throw APIError(status: 500, code: "runtime_failed", message: "container \(name): copying the image's files into its volumes failed: \(error)",
                           hint: "check the daemon's data directory (free space, permissions); nothing was created")
        }
        return Record(id: id, name: name, image: request.image, imageDigest: image.manifestDigest?.description, request: request,
                      createdAt: Date(), restartPolicy: restartPolicy,
                      mounts: mounts, entrypoint: entrypoint, cmd: cmd)
    }

    /// `-v` and `--volumes-from`, named volumes created on the way.
    private func resolveMounts(_ request: ContainerCreateRequest) throws -> [ContainerInspectView.Mount] {
        var mounts: [ContainerInspectView.Mount] = []
        for text in request.volumes ?? [] {
            let (source, destination, readOnly) = try ContainerOptions.volume(text)
            switch source {
            case .bind(let path):
                mounts.append(.init(Type: "bind", Name: nil, Source: path, Destination: destination, RW: !readOnly))
            case .named(let name):
                _ = try volumes.ensure(name)
                mounts.append(.init(Type: "volume", Name: name, Source: volumes.dataPath(name), Destination: destination, RW: !readOnly))
            case .anonymous:
                let name = Self.randomID()
                _ = try volumes.ensure(name, anonymous: true)
                mounts.append(.init(Type: "volume", Name: name, Source: volumes.dataPath(name), Destination: destination, RW: !readOnly))
            }
        }
        for text in request.volumesFrom ?? [] {
            let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
            let source = try resolve(parts[0])
            let mode = parts.count > 1 ? parts[1] : nil
            guard mode == nil || mode == "ro" || mode == "rw" else { throw APIError.invalid("--volumes-from", "'\(text)': the mode must be ro or rw") }
            for var mount in source.mounts where !mounts.contains(where: { $0.Destination == mount.Destination }) {
                if let mode { mount.RW = mode == "rw" }
                mounts.append(mount)
            }
        }
        var seen: Set<String> = []
        for mount in mounts where !seen.insert(mount.Destination).inserted {
            throw APIError.invalid("-v", "two volumes are mounted on \(mount.Destination)")
        }
        return mounts
    }

    // MARK: Lifecycle

    /// Starts a created container, or again an exited one (its writable layer
    /// and log are kept). A running one is left alone.
    func start(_ key: String) async throws {
        let record = try resolve(key)
        let container = try self.container(record)
        switch container.state.status {
        case .running, .paused: return
        case .exited: try runtime.prepareRestart(record.id)
        case .created: break
        }
        update(record.id) { $0.stoppedByUser = false }
        do {
            try await Self.blocking { try self.runtime.start(record.id) }
        } catch {
            if record.request.autoRemove == true { try? await remove(record.id, force: true, volumes: true) }
            throw Self.apiError(error, name: record.name)
        }
        watch(record.id)
    }

    /// The container's stop signal (`--stop-signal`, the image's
    /// STOPSIGNAL, SIGTERM), `timeout` seconds (else `--stop-timeout`, else
    /// 10), then SIGKILL. The restart policy does not restart a stopped container.
    func stop(_ key: String, timeout: Int?) async throws {
        let record = try resolve(key)
        let container = try self.container(record)
        update(record.id) { $0.stoppedByUser = true }
        guard container.state.status.hasProcess else { return }
        let signal = try ContainerOptions.signal(record.request.stopSignal ?? "TERM", flag: "--stop-signal")
        let grace = Duration.seconds(timeout ?? record.request.stopTimeout ?? 10)
        do {
            _ = try await Self.blocking { try self.runtime.stop(record.id, signal: signal, gracePeriod: grace) }
        } catch {
            throw Self.apiError(error, name: record.name)
        }
    }

    func restart(_ key: String, timeout: Int?) async throws {
        try await stop(key, timeout: timeout)
        try await start(key)
    }

    func kill(_ key: String, signal: Int32) throws {
        let record = try resolve(key)
        guard try container(record).state.status.hasProcess else {
            throw APIError(status: 409, code: "not_running", message: "container \(record.name) is not running", hint: "start it first")
        }
        do {
            try runtime.kill(record.id, signal: signal)
        } catch {
            throw Self.apiError(error, name: record.name)
        }
    }

    /// Freezes (`pause`) or thaws (`unpause`) every process of the container.
    func setPaused(_ key: String, _ paused: Bool) throws {
        let record = try resolve(key)
        let status = try container(record).state.status
        if paused && status != .running {
            throw APIError(status: 409, code: "conflict", message: "container \(record.name) is \(status.rawValue), not running", hint: "only a running container can be paused")
        }
        if !paused && status != .paused {
            throw APIError(status: 409, code: "conflict", message: "container \(record.name) is not paused", hint: "see `shoal container ps`")
        }
        do {
            if paused { try runtime.pause(record.id) } else { try runtime.unpause(record.id) }
        } catch {
            throw Self.apiError(error, name: record.name)
        }
    }

    /// Removes a container: its process (with `force`), cgroup, state, log,
    /// writable layer and, with `volumes`, its anonymous volumes.
    ///
    /// Once the process is gone the container leaves the user's view first
    /// (its name is free, `ps` and `inspect` no longer see it, and `wait
    /// --condition removed` returns, so `run --rm` ends there); the
    /// network, cgroup and files go after, before this returns. The record
    /// on disk says `removal` meanwhile, so a daemon that stops half-way
    /// finishes the removal when it starts again.
    func remove(_ key: String, force: Bool, volumes removeVolumes: Bool) async throws {
        let record = try resolve(key)
        if let container = runtime.container(record.id), container.state.status.hasProcess, !force {
            throw APIError(status: 409, code: "conflict", message: "you cannot remove a running container: \(record.name) is running",
                           hint: "stop it first (`shoal container stop \(record.name)`), or use `shoal container rm -f`")
        }
        let container = runtime.container(record.id)
        if let container, container.state.status.hasProcess {
            update(record.id) { $0.stoppedByUser = true }
            do {
                _ = try await Self.blocking { try self.runtime.stop(record.id, signal: SIGKILL, gracePeriod: .zero) }
            } catch {
                throw Self.apiError(error, name: record.name)
            }
        }
        guard let claimed = claimRemoval(record.id, anonymousVolumes: removeVolumes) else { return }
        try await Self.blocking { self.finishRemoval(claimed) }
    }

    /// Takes the container out of view (records `removal` on disk first) and
    /// wakes its waiters; nil when another remover claimed it (an `rm -f` may
    /// race the `--rm` of its exit), which then finishes the removal.
    ///
    /// A `--rm` container removed as `--rm` removes it (anonymous volumes
    /// too) is not marked: its record already says so, and a daemon that
    /// starts with the record of an exited `--rm` container, or with the
    /// record alone, finishes that removal (``init``). One rewrite of the
    /// record less before `run --rm` returns.
    private func claimRemoval(_ id: String, anonymousVolumes: Bool) -> Record? {
        let claimed = lock.withLock { () -> Record? in
            guard var current = records.removeValue(forKey: id) else { return nil }
            current.stoppedByUser = true
            current.removal = Removal(anonymousVolumes: anonymousVolumes)
            if !(current.request.autoRemove == true && anonymousVolumes) { save(current) }
            return current
        }
        if claimed != nil { runtime.container(id)?.markRemoved() }
        return claimed
    }

    /// What a removal that has begun still has to do.
    struct Removal: Codable, Equatable, Sendable {
        /// Remove the container's anonymous volumes too (`rm -v`, `--rm`).
        var anonymousVolumes: Bool
    }

    /// The heavy part of a removal, once the container is out of view: the
    /// runtime's state (network, cgroup, log), the writable layer, the
    /// record and, when asked, anonymous volumes no container uses.
    private func finishRemoval(_ record: Record) {
        if runtime.container(record.id) != nil {
            do {
                try runtime.delete(record.id, force: true)
            } catch {
                FileHandle.standardError.write(Data("shoal daemon: removing container \(record.name): \(error)\n".utf8))
            }
        }
        removeFiles(record.id)
        if record.removal?.anonymousVolumes == true { removeAnonymousVolumes(record.mounts) }
    }

    /// Removes the anonymous volumes among `mounts` that no container uses.
    func removeAnonymousVolumes(_ mounts: [ContainerInspectView.Mount]) {
        for mount in mounts where mount.Type == "volume" {
            guard let name = mount.Name, volumes.read(name)?.anonymous == true, users(ofVolume: name).isEmpty else { continue }
            try? volumes.remove(name)
        }
    }

    /// What a `wait` waits for (Docker's conditions).
    enum WaitCondition: String, Sendable {
        /// The current run's exit (at once if it is not running).
        case notRunning = "not-running"
        /// The exit of a run that starts after the call (`start -a` of an exited container).
        case nextExit = "next-exit"
        /// The exit, then the removal (`run --rm`: the CLI returns once it is gone).
        case removed
    }

    /// Waits until `condition` holds, woken by the container's changes (no
    /// thread held, no polling).
    func wait(_ key: String, condition: WaitCondition = .notRunning) async throws -> ContainerWaitReply {
        let recent = lock.withLock { recentExits[key] }
        if let recent, condition != .removed { return recent }
        let container: Container
        do {
            container = try self.container(try resolve(key))
        } catch let error as APIError where error.status == 404 {
            // A `--rm` container removed before the call: its exit is kept.
            guard let recent else { throw error }
            return recent
        }
        return try await wait(container, condition: condition)
    }

    /// ``wait(_:condition:)`` on a container already looked up (`run` holds
    /// it from its creation: a `--rm` one cannot be found by name once removed).
    func wait(_ container: Container, condition: WaitCondition) async throws -> ContainerWaitReply {
        // The tick only notices the daemon stopping.
        let changes = ContainerChangeStream(container, tick: Self.watchPollInterval)
        defer { changes.close() }
        let initial = container.state
        while true {
            // Removal ends every wait: no run can follow it.
            if container.isRemoved { break }
            if condition != .removed && Self.runEnded(container.state, since: initial, nextExit: condition == .nextExit) { break }
            if lock.withLock({ stopped }) {
                throw APIError(status: 503, code: "stopping", message: "the daemon is stopping", hint: "wait again once it is back")
            }
            guard await changes.next() else { throw CancellationError() }
        }
        return Self.waitReply(container.state)
    }

    /// Whether the run a waiter or log follower attached to has ended: the
    /// current one, or with `nextExit` one started after `initial` was read.
    static func runEnded(_ state: ContainerState, since initial: ContainerState, nextExit: Bool) -> Bool {
        guard state.status == .exited else { return false }
        guard nextExit, initial.status == .exited else { return true }
        return state.startedAt != initial.startedAt
    }

    static func waitReply(_ state: ContainerState) -> ContainerWaitReply {
        ContainerWaitReply(statusCode: state.exitStatus?.code ?? -1, oomKilled: state.oomKilled, error: state.startError)
    }

    // MARK: Exits

    /// Watches the container's current run on its own thread and handles
    /// its exit: `--rm`, then the restart policy.
    private func watch(_ id: String) {
        guard let container = runtime.container(id), let run = container.state.startedAt else { return }
        BlockingThreadPool.shared.run { [weak self] in
            while let self, !self.lock.withLock({ self.stopped }) {
                let state = container.state
                guard state.startedAt == run else { return }  // started again meanwhile: that run has its own watcher
                if state.status == .exited {
                    self.exited(id, run: run, state: state)
                    return
                }
                // Woken as the exit is known, before its record: `--rm` and
                // the restart policy wait for the record where they need it.
                _ = container.wait(timeout: Self.watchPollInterval, recorded: false)
            }
        }
    }

    /// Whether `handled` is the run that started at `run`: the runtime keeps
    /// starts to the microsecond on disk, the record to the nanosecond, so
    /// after a daemon restart the two differ by less than a millisecond
    /// (and no container starts twice within one).
    static func sameRun(_ handled: Date?, _ run: Date) -> Bool {
        guard let handled else { return false }
        return abs(handled.timeIntervalSince(run)) < 0.001
    }

    private func exited(_ id: String, run: Date, state: ContainerState) {
        let claimed = lock.withLock { () -> Record? in
            guard var record = records[id], !Self.sameRun(record.handledRun, run) else { return nil }
            record.handledRun = run
            records[id] = record
            // A `--rm` one is saved once, as its removal begins (a daemon that
            // stops before then handles this exit again when it starts).
            if record.request.autoRemove != true { save(record) }
            return record
        }
        guard let record = claimed else { return }
        let code = state.exitStatus?.code ?? -1
        if record.request.autoRemove == true {
            lock.withLock { recentExits.remember(Self.waitReply(state), keys: [id, record.name]) }
            // Here on the watcher's thread, not in a task: `run --rm` waits for the claim.
            var timings = StepTimings("autoremove")
            defer { timings.report() }
            if let claimed = claimRemoval(id, anonymousVolumes: true) {
                timings.mark("claim")
                finishRemoval(claimed)
                timings.mark("remove")
            }
            return
        }
        guard record.restartPolicy.restarts(exitCode: code, restartCount: record.restartCount, stoppedByUser: record.stoppedByUser) else { return }
        Thread.sleep(forTimeInterval: Double(RestartPolicy.delayMilliseconds(restartCount: record.restartCount)) / 1000)
        // Still wanted? (stopped, removed or started by hand meanwhile)
        guard let current = lock.withLock({ records[id] }), !current.stoppedByUser,
              runtime.container(id)?.state.startedAt == run, runtime.container(id)?.state.status == .exited else { return }
        do {
            try runtime.prepareRestart(id)
            try runtime.start(id)
            update(id) { $0.restartCount += 1 }
            watch(id)
        } catch {
            update(id) { $0.restartCount += 1 }
            FileHandle.standardError.write(Data("shoal daemon: restarting container \(record.name) failed: \(error)\n".utf8))
        }
    }

    // MARK: Volumes

    /// Ids of the containers that mount volume `name`.
    func users(ofVolume name: String) -> [String] {
        lock.withLock { records.values.filter { $0.mounts.contains { $0.Name == name } }.map(\.id).sorted() }
    }

    func volumeView(_ record: VolumeStore.Record) -> VolumeView {
        VolumeView(name: record.name, driver: "local", mountpoint: volumes.dataPath(record.name), createdAt: Self.timestamp(record.createdAt),
                   labels: record.labels, anonymous: record.anonymous, usedBy: users(ofVolume: record.name))
    }

    func removeVolume(_ name: String, force: Bool) throws {
        let users = users(ofVolume: name)
        if !users.isEmpty && !force {
            let names = lock.withLock { users.compactMap { records[$0]?.name } }
            throw APIError(status: 409, code: "volume_in_use", message: "volume \(name) is in use by container \(names.joined(separator: ", "))",
                           hint: "remove the container first (`shoal container rm \(names.first ?? "")`)")
        }
        try volumes.remove(name)
    }

    // MARK: Helpers

    /// 64 hex digits, as Docker's ids.
    static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in
            let text = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - text.count) + text
        }.joined()
    }

    /// Runs blocking work (runtime calls that wait) on its own thread.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            BlockingThreadPool.shared.run { continuation.resume(with: Result { try body() }) }
        }
    }

    /// A runtime error as the API answers it.
    static func apiError(_ error: any Error, name: String) -> APIError {
        if let error = error as? APIError { return error }
        guard let error = error as? RuntimeError else { return APIError.from(error) }
        switch error {
        case .noSuchContainer:
            return APIError(status: 404, code: "not_found", message: "no such container: \(name)", hint: "list them with `shoal container ps -a`")
        case .invalidState(_, let state, let operation):
            return APIError(status: 409, code: "conflict", message: "cannot \(operation) container \(name): it is \(state.rawValue)", hint: "see `shoal container ps -a`")
        case .executableNotFound:
            return APIError(status: 400, code: "executable_not_found", message: "container \(name): \(error)", hint: "check the command and the image's $PATH")
        case .permissionDenied:
            return APIError(status: 400, code: "not_executable", message: "container \(name): \(error)", hint: "check the file's mode inside the image")
        case .workingDirectoryNotFound, .noSuchUser, .noSuchGroup, .invalidSpec, .rootFilesystemNotFound:
            return APIError(status: 400, code: "invalid_argument", message: "container \(name): \(error)", hint: "fix the command, user, working directory or options and run it again")
        case .noWritableLayer:
            return APIError(status: 409, code: "no_writable_layer", message: "container \(name): \(error)", hint: "export it with `shoal container export` instead")
        default:
            return APIError(status: 500, code: "runtime_failed", message: "container \(name): \(error)", hint: "check the daemon's log and the host (cgroups, overlayfs)")
        }
    }
}

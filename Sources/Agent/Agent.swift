import ClusterState
import Foundation
import Images
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// How an agent runs.
public struct AgentConfiguration: Sendable {
    /// The agent's own files: `tasks.json` (what it was told and what it
    /// saw, to re-adopt after a restart), the containers' writable layers
    /// under `rw/`, named volumes under `volumes/`.
    public var stateDirectory: String
    public var hostname: String
    /// The node's address as other nodes see it.
    public var address: String
    public var platform: String
    public var reconnectInitialBackoff: Duration = .milliseconds(100)
    public var reconnectMaxBackoff: Duration = .seconds(5)
    /// Status changes are sent in batches at most this often.
    public var statusFlushInterval: Duration = .milliseconds(50)
    /// Where tasks' published ports listen on this host: every interface
    /// (Swarm's mode=host), or one address (a loopback-only node).
    public var publishAddress = "0.0.0.0"

    public init(stateDirectory: String, hostname: String, address: String, platform: String) {
        self.stateDirectory = stateDirectory
        self.hostname = hostname
        self.address = address
        self.platform = platform
    }
}

/// The worker side of a node (Swarm's agent): keeps a session with a
/// dispatcher, receives the node's tasks, drives the container runtime to
/// reach their desired state, and reports what it observes.
///
/// - A task assigned with desired state running is prepared (image
///   resolved and unpacked), started, and reported
///   `preparing → starting → running`; its exit is reported as `complete`
///   (code 0) or `failed` (with the code, signal or OOM kill).
/// - A task whose desired state moves past running is stopped (SIGTERM, the
///   template's grace period, SIGKILL) and reported `shutdown`.
/// - A task removed from the store loses its container and writable layer.
/// - Without a manager the tasks keep running; reports wait (newest per
///   task) and the first assignment list of the next session reconciles.
/// - After a restart the runtime re-adopts the running containers and the
///   agent re-attaches them to their tasks from `tasks.json`.
public final class Agent: @unchecked Sendable {
    public let configuration: AgentConfiguration
    public let runtime: ContainerRuntime
    let images: any ImageSource
    let connector: any DispatcherConnector

    struct Record: Codable {
        var task: ServiceTask
        /// What this agent last observed (and reports).
        var observed: ServiceTask.Status
        /// The service's name, when the manager sent it (names the container in `ps`).
        var serviceName: String?
        /// A start is under way (prepare/create/start).
        var starting = false
        /// We asked the container to stop.
        var stopping = false
        /// An exit watcher is attached.
        var watched = false
        /// Why we stopped the container for failing its health check (the
        /// exit then reports the task failed with it).
        var unhealthy: String?

        enum CodingKeys: String, CodingKey { case task, observed, serviceName }
        init(task: ServiceTask, observed: ServiceTask.Status) {
            self.task = task
            self.observed = observed
        }
    }

    /// The session with the dispatcher: heartbeats, assignments in, statuses out.
    private var session: AgentSession!
    private let lock = NSLock()
    // Guarded by `lock`.
    private var records: [ObjectID: Record] = [:]
    /// Task starts under way (image preparation, create, start).
    private var runs: [ObjectID: Task<Void, Never>] = [:]
    private var stopped = false

    public init(configuration: AgentConfiguration, runtime: ContainerRuntime, images: any ImageSource, connector: any DispatcherConnector) throws {
        self.configuration = configuration
        self.runtime = runtime
        self.images = images
        self.connector = connector
        try FileManager.default.createDirectory(atPath: configuration.stateDirectory + "/rw", withIntermediateDirectories: true)
        loadRecords()
        var sessionConfiguration = AgentSession.Configuration()
        sessionConfiguration.reconnectInitialBackoff = configuration.reconnectInitialBackoff
        sessionConfiguration.reconnectMaxBackoff = configuration.reconnectMaxBackoff
        sessionConfiguration.statusFlushInterval = configuration.statusFlushInterval
        session = AgentSession(configuration: sessionConfiguration, connector: connector, request: { [configuration] in
            Self.sessionRequest(configuration)
        }, onBatch: { [weak self] batch, connection in
            guard let self else { return }
            self.apply(batch)
            for request in batch.logRequests { self.serveLogs(request, sessionID: batch.sessionID, connection: connection) }
        })
    }

    static func containerID(_ taskID: ObjectID) -> String { "task-" + taskID.rawValue }

    // MARK: Lifecycle

    /// Re-adopts the containers of known tasks and starts the session and report loops.
    public func start() {
        adoptContainers()
        session.start()
    }

    /// Ends the session; containers keep running (a restarted agent re-adopts them).
    /// `detachRuntime: false` when the runtime is shared and outlives the agent.
    public func stop(detachRuntime: Bool = true) async {
        lock.withLock { stopped = true }
        await session.stop()
        // A start under way would use the runtime after it is detached (and
        // claim its bridge again): cancel the preparation and wait.
        let starts = lock.withLock { Array(runs.values) }
        for start in starts { start.cancel() }
        for start in starts { await start.value }
        // Pulls of tasks that will not start now, and the registry connections: nothing outlives the agent.
        await images.shutdown()
        if detachRuntime { runtime.detach() }
    }

    /// Kills and deletes every task container this agent knows of (tests, `leave`).
    public func removeAllContainers() {
        let ids = lock.withLock { () -> [ObjectID] in
            let ids = Array(records.keys)
            for id in ids { records[id]?.stopping = true }
            return ids
        }
        for id in ids { destroyContainer(id, gracePeriod: .zero) }
        for state in runtime.list() where state.id.hasPrefix("task-") { try? runtime.delete(state.id, force: true) }
        lock.withLock { records.removeAll() }
        saveRecords()
    }

    /// Sessions opened so far (tests).
    public var sessionCount: Int { session.sessionCount }
    public var isConnected: Bool { session.isConnected }

    /// What a task's container wrote, if it runs (or ran) on this node.
    public func logs(taskID: ObjectID) -> (standardOutput: String, standardError: String)? {
        try? runtime.logs(Self.containerID(taskID))
    }

    /// The containers this agent runs (or ran) for its tasks, by task id:
    /// what `shoal container ps` shows beside the engine's own containers.
    public func taskContainers() -> [TaskContainer] {
        lock.withLock {
            records.values.sorted { $0.task.id < $1.task.id }.map { record in
                TaskContainer(containerID: Self.containerID(record.task.id), task: record.task, serviceName: record.serviceName)
            }
        }
    }

    public func knows(taskID: ObjectID) -> Bool {
        lock.withLock { records[taskID] != nil } || runtime.container(Self.containerID(taskID)) != nil
    }

    // MARK: Session

    static func sessionRequest(_ configuration: AgentConfiguration) -> SessionRequest {
        SessionRequest(hostname: configuration.hostname, address: configuration.address, platform: configuration.platform,
                       resources: HostResources.current())
    }

    /// Records and queues an observed status (state only moves forward).
    /// The health verdict and the bound ports carry over from the last
    /// status unless given.
    private func report(_ taskID: ObjectID, _ state: ServiceTask.State, message: String = "", error: String = "", exitCode: Int32? = nil,
                        health: ServiceTask.Health? = nil, ports: [TaskTemplate.PublishedPort]? = nil) {
        let changed = lock.withLock { () -> Bool in
            guard var record = records[taskID] else { return false }
            if state < record.observed.state || (record.observed.state.isTerminal && state != record.observed.state) { return false }
            let old = record.observed
            let health = health ?? old.health
            let ports = ports ?? old.publishedPorts
            // The same news again (a re-attached watcher): no new timestamp.
            if old.state == state && old.message == message && old.error == error && old.health == health && old.publishedPorts == ports { return false }
            let status = ServiceTask.Status(state: state, timestampMilliseconds: Int64(Date().timeIntervalSince1970 * 1000), message: message,
                                            error: error, exitCode: exitCode, containerID: Self.containerID(taskID), health: health, publishedPorts: ports)
            record.observed = status
            records[taskID] = record
            // Under `lock`: two reports of one task queue in the order decided here.
            session.queue(taskID, status)
            return true
        }
        if changed { saveRecords() }
    }

    // MARK: Assignments

    func apply(_ batch: AssignmentBatch) {
        var removed = batch.removedTaskIDs
        if batch.full {
            let listed = Set(batch.tasks.map(\.id))
            removed += lock.withLock { records.keys.filter { !listed.contains($0) } }
            // Containers of tasks nobody knows any more (lost state file).
            for state in runtime.list() where state.id.hasPrefix("task-") {
                if let id = ObjectID(String(state.id.dropFirst(5))), !listed.contains(id), lock.withLock({ records[id] == nil }) {
                    try? runtime.delete(state.id, force: true)
                }
            }
        }
        for id in Set(removed).sorted() { remove(id) }
        for task in batch.tasks { update(task, serviceName: batch.serviceNames?[task.serviceID.rawValue]) }
        saveRecords()
    }

    private enum Action { case none, start, shutdown, adopt }

    private func update(_ task: ServiceTask, serviceName: String?) {
        let action = lock.withLock { () -> Action in
            var record = records[task.id] ?? Record(task: task, observed: task.status)
            record.task = task
            if let serviceName { record.serviceName = serviceName }
            // The manager may know a newer status (reported by us before a restart).
            if task.status.state > record.observed.state { record.observed = task.status }
            records[task.id] = record
            if task.desiredState > .running {
                return record.observed.state.isTerminal || record.stopping ? .none : .shutdown
            }
            if record.starting || record.watched || record.observed.state.isTerminal { return .none }
            if record.observed.state < .assigned { return .none }
            if record.observed.state <= .accepted { record.starting = true; records[task.id] = record; return .start }
            return .adopt
        }
        switch action {
        case .none: break
        case .start:
            lock.withLock {
                runs[task.id] = Task {
                    await self.run(task)
                    _ = self.lock.withLock { self.runs.removeValue(forKey: task.id) }
                }
            }
        case .shutdown: shutdown(task.id)
        case .adopt: adopt(task.id)
        }
    }

    private func remove(_ taskID: ObjectID) {
        lock.withLock {
            records[taskID]?.stopping = true
            session.forget(taskID)
        }
        let grace = lock.withLock { records[taskID]?.task.template.stopGracePeriodMilliseconds } ?? 10_000
        Thread.detachNewThread { [self] in
            destroyContainer(taskID, gracePeriod: .milliseconds(grace))
            lock.withLock { _ = records.removeValue(forKey: taskID) }
            saveRecords()
        }
    }

    private func destroyContainer(_ taskID: ObjectID, gracePeriod: Duration) {
        let id = Self.containerID(taskID)
        if let container = runtime.container(id) {
            if container.state.status == .running { _ = try? runtime.stop(id, gracePeriod: gracePeriod) }
            try? runtime.delete(id, force: true)
        }
        try? FileManager.default.removeItem(atPath: rwDirectory(taskID))
    }

    private func shutdown(_ taskID: ObjectID) {
        let (grace, running) = lock.withLock { () -> (Int64, Bool) in
            records[taskID]?.stopping = true
            let running = runtime.container(Self.containerID(taskID))?.state.status == .running
            return (records[taskID]?.task.template.stopGracePeriodMilliseconds ?? 10_000, running)
        }
        if running {
            // The exit watcher reports `shutdown`.
            Thread.detachNewThread { [self] in
                _ = try? runtime.stop(Self.containerID(taskID), gracePeriod: .milliseconds(grace))
            }
        } else if !lock.withLock({ records[taskID]?.starting ?? false }) {
            report(taskID, .shutdown, message: "shut down before it started")
        }
        // A start under way sees `stopping` before it starts the container.
    }

    // MARK: Running a task

    private func run(_ task: ServiceTask) async {
        report(task.id, .preparing, message: "preparing image \(task.template.image)")
        let image: PreparedImage
        do {
            image = try await images.prepare(reference: task.template.image) { [weak self] line in
                // Same state, newer message: `service ps` shows how far the pull is.
                self?.report(task.id, .preparing, message: line)
            }
        } catch {
            let stopping = lock.withLock { () -> Bool in
                records[task.id]?.starting = false
                return stopped
            }
            // Interrupted by the agent's stop: the next agent starts it again.
            if !stopping { report(task.id, .rejected, message: "preparing failed", error: "\(error)") }
            return
        }
        if lock.withLock({ records[task.id]?.stopping ?? true }) {
            lock.withLock { records[task.id]?.starting = false }
            report(task.id, .shutdown, message: "shut down before it started")
            return
        }
        report(task.id, .starting, message: "starting container")
        let spec: ContainerSpec
        do {
            spec = try makeSpec(task, image: image)
        } catch {
            lock.withLock { records[task.id]?.starting = false }
            report(task.id, .rejected, message: "invalid task", error: "\(error)")
            return
        }
        if lock.withLock({ stopped }) {
            lock.withLock { records[task.id]?.starting = false }
            return
        }
        let result: Result<Void, any Error> = await blocking { [runtime] in
            if let existing = runtime.container(spec.id) {
                if existing.state.status == .running { return }
                try? runtime.delete(spec.id, force: true)
            }
            try runtime.create(spec)
            do {
                try runtime.start(spec.id)
            } catch {
                try? runtime.delete(spec.id, force: true)
                throw error
            }
        }
        lock.withLock { records[task.id]?.starting = false }
        switch result {
        case .success:
            let ports = boundPorts(task.id)
            if spec.healthCheck != nil {
                // Swarm's rule: a task with a health check runs once it is healthy.
                report(task.id, .starting, message: "started; waiting for the health check to pass", health: .starting, ports: ports)
            } else {
                report(task.id, .running, message: "started", ports: ports)
            }
            watch(task.id)
            if lock.withLock({ records[task.id]?.stopping ?? false }) { shutdown(task.id) }
        case .failure(let error):
            report(task.id, .failed, message: "starting failed", error: "\(error)")
        }
    }

    /// The host ports the task's container got (the spec's, or the ones
    /// the kernel picked for published 0).
    private func boundPorts(_ taskID: ObjectID) -> [TaskTemplate.PublishedPort] {
        (runtime.container(Self.containerID(taskID))?.state.network?.ports ?? []).map { port in
            TaskTemplate.PublishedPort(publishedPort: Int(port.hostPort), targetPort: Int(port.containerPort),
                                       transportProtocol: port.transport == .udp ? .udp : .tcp, mode: .host, hostAddress: port.hostAddress)
        }
    }

    /// Attaches a watcher thread (`waitUntil` blocks) that follows the
    /// container's health verdicts until it exits, then reports the exit.
    private func watch(_ taskID: ObjectID) {
        let id = Self.containerID(taskID)
        guard let container = runtime.container(id) else { return }
        let already = lock.withLock { () -> Bool in
            if records[taskID]?.watched == true { return true }
            records[taskID]?.watched = true
            return false
        }
        if already { return }
        Thread.detachNewThread { [weak self] in
            var verdict: HealthStatus?
            while true {
                let state = container.waitUntil { state in
                    !state.status.hasProcess || (state.health.map { $0.status != verdict } ?? false)
                }
                guard state.status.hasProcess, let health = state.health else { break }
                verdict = health.status
                self?.healthChanged(taskID, health)
            }
            let status = container.wait()
            self?.exited(taskID, status: status ?? .unknown, oomKilled: container.state.oomKilled)
        }
    }

    /// A new health verdict: healthy makes a starting task running; unhealthy
    /// stops the container (its exit reports the task failed, and the
    /// restart policy replaces it), as Swarm does.
    private func healthChanged(_ taskID: ObjectID, _ health: HealthState) {
        switch health.status {
        case .starting:
            break
        case .healthy:
            if lock.withLock({ records[taskID].map { $0.stopping || $0.unhealthy != nil } ?? true }) { return }
            report(taskID, .running, message: "started; health check passed", health: .healthy)
        case .unhealthy:
            let last = health.log.last.map { "last check: exit \($0.exitCode)\($0.output.isEmpty ? "" : ", " + $0.output.trimmingCharacters(in: .whitespacesAndNewlines))" } ?? ""
            let grace = lock.withLock { () -> Int64? in
                guard var record = records[taskID], !record.stopping, record.unhealthy == nil else { return nil }
                record.unhealthy = "\(health.failingStreak) failed health checks in a row" + (last.isEmpty ? "" : "; " + last)
                records[taskID] = record
                return record.task.template.stopGracePeriodMilliseconds
            }
            guard let grace else { return }
            _ = try? runtime.stop(Self.containerID(taskID), gracePeriod: .milliseconds(grace))
        }
    }

    private func exited(_ taskID: ObjectID, status: ExitStatus, oomKilled: Bool) {
        let (stopping, limit, unhealthy) = lock.withLock { () -> (Bool, Int64, String?) in
            records[taskID]?.watched = false
            let record = records[taskID]
            return ((record?.stopping ?? true) || (record?.task.desiredState ?? .shutdown) > .running, record?.task.template.resources.limitMemoryBytes ?? 0,
                    record?.unhealthy)
        }
        if stopping {
            report(taskID, .shutdown, message: "stopped (\(status))", exitCode: status.code)
        } else if let unhealthy {
            report(taskID, .failed, message: "unhealthy", error: "task: unhealthy container (\(unhealthy)); stopped (\(status))",
                   exitCode: status.code, health: .unhealthy)
        } else if status == .exited(0) {
            report(taskID, .complete, message: "finished (exit code 0)", exitCode: 0)
        } else if oomKilled {
            report(taskID, .failed, message: "killed", error: "out of memory: the container reached its memory limit of \(limit) bytes (\(status))", exitCode: status.code)
        } else {
            report(taskID, .failed, message: "exited", error: "task \(status)", exitCode: status.code)
        }
    }

    /// A task the manager believes is past `accepted`: attach to its container, or report it lost.
    private func adopt(_ taskID: ObjectID) {
        let id = Self.containerID(taskID)
        if let container = runtime.container(id) {
            if container.state.status == .running {
                watch(taskID)
            } else {
                exited(taskID, status: container.state.exitStatus ?? .unknown, oomKilled: container.state.oomKilled)
            }
        } else {
            report(taskID, .failed, message: "lost", error: "the task's container is gone (the node restarted or its state was removed)")
        }
    }

    private func adoptContainers() {
        let ids = lock.withLock { records.filter { $0.value.observed.state >= .preparing && !$0.value.observed.state.isTerminal }.map(\.key) }
        for id in ids.sorted() { adopt(id) }
    }

    // MARK: Logs

    /// How often a followed log is read for new lines.
    static let logFollowPollInterval: Duration = .milliseconds(100)
    /// A quiet followed log yields an empty batch this often: a remote
    /// reader answers each batch, so the agent learns when it went away.
    static let logFollowKeepAlive: Duration = .seconds(1)
    /// Lines of one ``TaskLogChunk`` stay under this (RPC frames are bounded).
    static let maxLogChunkBytes = 256 * 1024

    /// A task's log as its container wrote it (rotated files included): at
    /// most the last `tail` lines, then with `follow` what it writes next
    /// until it exits (and, while it is quiet, an empty batch every
    /// ``logFollowKeepAlive``). Local `service logs` reads it directly; a
    /// manager elsewhere gets it through ``serveLogs(_:sessionID:connection:)``.
    public func logLines(taskID: ObjectID, follow: Bool, tail: Int?) throws -> AsyncThrowingStream<[TaskLogLine], any Error> {
        guard let container = runtime.container(Self.containerID(taskID)) else {
            throw AgentError.runtime("task \(taskID) has no container on node \(configuration.hostname) (it was removed, or never started there)")
        }
        let follower = ContainerLogFollower(path: container.logPath, maxFiles: container.state.spec.logging?.maxFiles ?? 1)
        let existing = follower.existing(tail: tail)
        return AsyncThrowingStream { continuation in
            let reader = Task {
                let first = Self.decodeLogLines(existing)
                if !first.isEmpty { continuation.yield(first) }
                var quietSince = ContinuousClock.now
                while follow && !Task.isCancelled {
                    // Checked before reading: the monitor writes the last lines before it records the exit.
                    let running = container.state.status.hasProcess
                    let lines = Self.decodeLogLines(follower.next())
                    if !lines.isEmpty || ContinuousClock.now - quietSince >= Self.logFollowKeepAlive {
                        continuation.yield(lines)
                        quietSince = ContinuousClock.now
                    }
                    if !running { break }
                    try? await Task.sleep(for: Self.logFollowPollInterval)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
    }

    static func decodeLogLines(_ lines: [ArraySlice<UInt8>]) -> [TaskLogLine] {
        let decoder = JSONDecoder()
        return lines.compactMap { line in
            (try? decoder.decode(LogEntry.self, from: Data(line))).map { TaskLogLine(stream: $0.stream, time: $0.time, log: $0.log) }
        }
    }

    /// Answers a manager's ``TaskLogRequest`` with chunks on the session's
    /// connection until the log ends or the manager stops wanting it.
    private func serveLogs(_ request: TaskLogRequest, sessionID: String, connection: any DispatcherConnection) {
        Task {
            func send(_ lines: [TaskLogLine], end: Bool = false, error: String? = nil) async throws -> Bool {
                try await connection.sendLogs(TaskLogChunk(sessionID: sessionID, requestID: request.requestID, lines: lines, end: end, error: error))
            }
            do {
                for try await lines in try logLines(taskID: request.taskID, follow: request.follow, tail: request.tail) {
                    var chunk: [TaskLogLine] = []
                    var bytes = 0
                    for line in lines {
                        if bytes + line.log.utf8.count > Self.maxLogChunkBytes && !chunk.isEmpty {
                            guard try await send(chunk) else { return }
                            chunk = []
                            bytes = 0
                        }
                        chunk.append(line)
                        bytes += line.log.utf8.count + line.time.utf8.count
                    }
                    // An empty batch goes too: it asks whether the reader is still there.
                    guard try await send(chunk) else { return }
                }
                _ = try await send([], end: true)
            } catch {
                _ = try? await send([], end: true, error: "\(error)")
            }
        }
    }

    // MARK: Container spec

    func rwDirectory(_ taskID: ObjectID) -> String { configuration.stateDirectory + "/rw/" + taskID.rawValue }

    func makeSpec(_ task: ServiceTask, image: PreparedImage) throws -> ContainerSpec {
        let template = task.template
        let config = image.config
        var command: [String]
        if !template.command.isEmpty {
            command = template.command + template.arguments
        } else {
            command = (config?.entrypoint ?? []) + (template.arguments.isEmpty ? (config?.cmd ?? []) : template.arguments)
        }
        guard !command.isEmpty else {
            throw AgentError.invalidTask("no command: image \(template.image) has no entrypoint or cmd; give one after the image name")
        }
        for port in template.ports where port.mode != .host {
            throw AgentError.invalidTask("port \(port.publishedPort):\(port.targetPort)/\(port.transportProtocol.rawValue) mode=\(port.mode.rawValue): only ports in mode=host are published so far")
        }
        // Tasks sit on the node bridge as containers do: each its own
        // address, so every replica can listen on the same container port.
        let ports = template.ports.map { port in
            PortMapping(hostAddress: configuration.publishAddress, hostPort: UInt16(port.publishedPort), containerPort: UInt16(port.targetPort),
                        transport: port.transportProtocol == .udp ? .udp : .tcp)
        }
        var environment = config?.env ?? []
        environment += template.environment
        environment += ["SHOAL_TASK_ID=\(task.id)", "SHOAL_TASK_SLOT=\(task.slot)", "SHOAL_SERVICE_ID=\(task.serviceID)",
                        "SHOAL_NODE_ID=\(task.nodeID?.rawValue ?? "")"]
        var limits = ResourceLimits()
        if template.resources.limitMemoryBytes > 0 { limits.memoryLimitBytes = template.resources.limitMemoryBytes }
        if template.resources.limitNanoCPUs > 0 {
            limits.cpuQuotaMicroseconds = max(1000, template.resources.limitNanoCPUs * ResourceLimits.defaultCPUPeriodMicroseconds / 1_000_000_000)
        }
        var mounts: [BindMount] = []
        for mount in template.mounts {
            switch mount.kind {
            case .bind:
                mounts.append(BindMount(source: mount.source, destination: mount.target, readOnly: mount.readOnly))
            case .volume:
                guard !mount.source.contains("/"), mount.source != "..", mount.source != "." else {
                    throw AgentError.invalidTask("volume name '\(mount.source)' must not contain '/'")
                }
                let path = configuration.stateDirectory + "/volumes/" + mount.source
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                mounts.append(BindMount(source: path, destination: mount.target, readOnly: mount.readOnly))
            }
        }
        let rw = rwDirectory(task.id)
        let user = template.user.isEmpty ? (config?.user.flatMap { $0.isEmpty ? nil : $0 }) : template.user
        let workdir = template.workingDirectory.isEmpty ? (config?.workingDir.flatMap { $0.isEmpty ? nil : $0 }) : template.workingDirectory
        return ContainerSpec(
            id: Self.containerID(task.id),
            rootFilesystem: .overlay(lowerDirectories: image.lowerDirectories, upperDirectory: rw + "/upper", workDirectory: rw + "/work", mountPoint: rw + "/merged"),
            command: command, environment: environment, user: user, workingDirectory: workdir,
            hostname: String(task.id.rawValue.prefix(12)), network: .bridge, limits: limits, mounts: mounts, publishedPorts: ports,
            healthCheck: Self.healthCheck(template.healthCheck, image: config?.healthcheck))
    }

    /// The container's check, as Docker decides it: `--no-healthcheck`
    /// turns it off; the command is the template's, else the image's
    /// HEALTHCHECK (`HEALTHCHECK NONE`: none); each timing is the
    /// template's, else the image's, else Docker's default (30 s, 30 s, 3).
    static func healthCheck(_ template: TaskTemplate.HealthCheck?, image: HealthConfig?) -> HealthCheck? {
        if template?.disabled == true { return nil }
        let imageCommand = image.flatMap { $0.disablesChecks ? nil : $0.command }
        guard let command = template.flatMap({ $0.command.isEmpty ? nil : $0.command }) ?? imageCommand else { return nil }
        var check = HealthCheck(command: command)
        if let image { check.adoptTimings(of: image) }
        if let template {
            if template.intervalMilliseconds > 0 { check.intervalMilliseconds = Int(template.intervalMilliseconds) }
            if template.timeoutMilliseconds > 0 { check.timeoutMilliseconds = Int(template.timeoutMilliseconds) }
            if template.retries > 0 { check.retries = template.retries }
            if template.startPeriodMilliseconds > 0 { check.startPeriodMilliseconds = Int(template.startPeriodMilliseconds) }
        }
        return check
    }

    // MARK: State file

    private var recordsPath: String { configuration.stateDirectory + "/tasks.json" }

    private func loadRecords() {
        guard let data = FileManager.default.contents(atPath: recordsPath),
              let saved = try? JSONDecoder().decode([Record].self, from: data) else { return }
        for record in saved { records[record.task.id] = record }
    }

    private func saveRecords() {
        let snapshot = lock.withLock { records.values.sorted { $0.task.id < $1.task.id } }
        guard let data = try? JSONEncoder().encode(snapshot) else { return }
        let temporary = recordsPath + ".tmp"
        if FileManager.default.createFile(atPath: temporary, contents: data) {
            rename(temporary, recordsPath)
        }
    }
}

/// Runs blocking work on its own thread, off Swift's cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async -> Result<T, any Error> {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(returning: Result { try body() })
        }
    }
}

/// What this host offers: every CPU and all memory (Docker's default).
public enum HostResources {
    public static func current() -> Node.Resources {
        let cpus = Int64(ProcessInfo.processInfo.activeProcessorCount)
        return Node.Resources(nanoCPUs: cpus * 1_000_000_000, memoryBytes: memoryBytes())
    }

    /// `MemTotal` from /proc/meminfo.
    static func memoryBytes() -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kilobytes = Int64(fields[1]) { return kilobytes * 1024 }
        }
        return 0
    }
}

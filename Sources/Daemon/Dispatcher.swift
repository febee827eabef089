import Agent
import ClusterState
import Foundation
import Manager
import Net
import Orchestrator
import RPC

/// The manager side of agent sessions (swarmkit's dispatcher). Every
/// manager serves it; writes go through the leader like every write.
///
/// - `session` (server stream): the caller's certificate names its node.
///   Opening marks the node ready with the resources it reports, then
///   streams its tasks: the full list first, then changes, coalesced while
///   the agent is slow to consume (the RPC stream's credit is the
///   back-pressure: nothing queues but the latest state of each task).
/// - `heartbeat`: the leader keeps a deadline per node
///   (``HeartbeatTracker``); a follower forwards each heartbeat to it. A
///   node whose deadline passes is marked down (the orchestrator then
///   replaces its tasks); its next heartbeat marks it ready again.
/// - `status`: task status batches, proposed as one command; only forward
///   transitions of the caller's own tasks pass.
final class Dispatcher: @unchecked Sendable {
    /// The status of a node no agent has opened a session from: not ready,
    /// so the scheduler gives it no tasks (a manager that runs no agent).
    static let awaitingAgentMessage = "no agent session yet: the node takes tasks once its agent connects"

    weak var manager: ManagerNode?
    let heartbeatPeriod: Duration
    private let lock = NSLock()
    // Guarded by `lock`.
    private var sessions: [String: Session] = [:]
    private var sessionByNode: [ObjectID: String] = [:]
    private var tracker: HeartbeatTracker
    private var routing: Task<Void, Never>?
    /// Task logs asked of agents, by request id: the session asked and where its lines go.
    private var logReaders: [String: (sessionID: String, continuation: AsyncThrowingStream<[TaskLogLine], any Error>.Continuation)] = [:]

    var heartbeatPeriodMilliseconds: Int64 {
        heartbeatPeriod.components.seconds * 1000 + heartbeatPeriod.components.attoseconds / 1_000_000_000_000_000
    }

    init(manager: ManagerNode, heartbeatPeriod: Duration) {
        self.manager = manager
        self.heartbeatPeriod = heartbeatPeriod
        let period = heartbeatPeriod.components.seconds * 1000 + heartbeatPeriod.components.attoseconds / 1_000_000_000_000_000
        tracker = HeartbeatTracker(periodMilliseconds: max(period, 1))
    }

    /// Starts routing committed task changes to the sessions.
    func start() {
        guard let manager else { return }
        // Only what route(_:) uses: other writes (configs, secrets...) wake nothing here.
        let events = manager.raft.watch(filter: { $0.kind == .task || $0.kind == .service })
        routing = Task { [weak self] in
            for await event in events {
                guard let self else { return }
                self.route(event)
            }
        }
    }

    func stop() {
        routing?.cancel()
        let all = lock.withLock {
            defer { sessions.removeAll(); sessionByNode.removeAll() }
            return Array(sessions.values)
        }
        for session in all {
            session.finish()
            endLogReaders(of: session)
        }
    }

    var sessionCount: Int { lock.withLock { sessions.count } }

    // MARK: Sessions

    final class Session: @unchecked Sendable {
        let id: String
        let nodeID: ObjectID
        private let lock = NSLock()
        // Guarded by `lock`.
        private var snapshotIndex: UInt64?
        private var buffered: [ClusterEvent] = []
        private var first: AssignmentBatch?
        private var pendingTasks: [ObjectID: ServiceTask] = [:]
        private var pendingRemoved: Set<ObjectID> = []
        private var sentDesired: [ObjectID: ServiceTask.State] = [:]
        private var pendingLogRequests: [TaskLogRequest] = []
        /// Every service's name seen (snapshot, then service events), for the batches.
        private var serviceNames: [ObjectID: String] = [:]
        private var finished = false
        private let signals: AsyncStream<Void>
        private let signal: AsyncStream<Void>.Continuation
        private var iterator: AsyncStream<Void>.AsyncIterator
        let periodMilliseconds: Int64

        init(id: String, nodeID: ObjectID, periodMilliseconds: Int64) {
            self.id = id
            self.nodeID = nodeID
            self.periodMilliseconds = periodMilliseconds
            (signals, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            iterator = signals.makeAsyncIterator()
        }

        /// The full list as of `state`; events up to its applied index are already in it.
        func snapshot(_ state: ClusterState) {
            let tasks = state.tasks(onNode: nodeID).filter(DispatchRules.concerns)
            lock.withLock {
                for task in tasks { sentDesired[task.id] = task.desiredState }
                // All of them: a task of any service may be placed here later.
                for service in state.services { serviceNames[service.id] = service.spec.name }
                first = AssignmentBatch(sessionID: id, full: true, tasks: tasks, removedTaskIDs: [], heartbeatPeriodMilliseconds: periodMilliseconds,
                                        serviceNames: names(of: tasks))
                snapshotIndex = state.appliedIndex
                let early = buffered
                buffered = []
                for event in early { add(event) }
            }
            signal.yield()
        }

        /// Under `lock`: the names of the tasks' services.
        private func names(of tasks: [ServiceTask]) -> [String: String] {
            var names: [String: String] = [:]
            for task in tasks { names[task.serviceID.rawValue] = serviceNames[task.serviceID] }
            return names
        }

        /// A service created or renamed: its tasks' batches name it.
        func noteService(_ service: Service) {
            lock.withLock { serviceNames[service.id] = service.spec.name }
        }

        func enqueue(_ event: ClusterEvent) {
            lock.withLock {
                if snapshotIndex == nil { buffered.append(event) } else { add(event) }
            }
            signal.yield()
        }

        /// Under `lock`.
        private func add(_ event: ClusterEvent) {
            guard let snapshotIndex, event.index > snapshotIndex, case .task(let task) = event.object else { return }
            if event.action == .removed {
                pendingTasks[task.id] = nil
                if sentDesired.removeValue(forKey: task.id) != nil { pendingRemoved.insert(task.id) }
                return
            }
            guard DispatchRules.concerns(task), sentDesired[task.id] != task.desiredState else { return }
            sentDesired[task.id] = task.desiredState
            pendingTasks[task.id] = task
            pendingRemoved.remove(task.id)
        }

        /// The next batch to send; waits for one. Nil: the session ended.
        func next() async -> AssignmentBatch? {
            while true {
                let batch: AssignmentBatch? = lock.withLock {
                    if finished { return nil }
                    if var first {
                        self.first = nil
                        pendingTasks.removeAll()
                        pendingRemoved.removeAll()
                        first.logRequests = pendingLogRequests
                        pendingLogRequests.removeAll()
                        return first
                    }
                    guard snapshotIndex != nil, !pendingTasks.isEmpty || !pendingRemoved.isEmpty || !pendingLogRequests.isEmpty else { return nil }
                    defer {
                        pendingTasks.removeAll()
                        pendingRemoved.removeAll()
                        pendingLogRequests.removeAll()
                    }
                    let tasks = pendingTasks.values.sorted { $0.id < $1.id }
                    return AssignmentBatch(sessionID: id, full: false, tasks: tasks, removedTaskIDs: pendingRemoved.sorted(),
                                           heartbeatPeriodMilliseconds: periodMilliseconds, logRequests: pendingLogRequests,
                                           serviceNames: names(of: tasks))
                }
                if let batch { return batch }
                if lock.withLock({ finished }) || Task.isCancelled { return nil }
                guard await iterator.next() != nil else { return nil }
            }
        }

        func finish() {
            lock.withLock { finished = true }
            signal.finish()
        }

        /// Sends `request` to the agent with the next batch.
        func requestLogs(_ request: TaskLogRequest) {
            lock.withLock { pendingLogRequests.append(request) }
            signal.yield()
        }
    }

    /// Opens a session for `nodeID` (replacing an older one of the same
    /// node): marks the node ready and takes the snapshot of its tasks.
    func openSession(nodeID: ObjectID, request: SessionRequest) async throws -> Session {
        guard let manager else { throw APIError(status: 503, code: "stopping", message: "this manager is stopping") }
        var generator = SecureRandom()
        let session = Session(id: ObjectID.random(using: &generator).rawValue, nodeID: nodeID, periodMilliseconds: heartbeatPeriodMilliseconds)
        let replaced: Session? = lock.withLock {
            let old = sessionByNode[nodeID].flatMap { sessions.removeValue(forKey: $0) }
            sessions[session.id] = session
            sessionByNode[nodeID] = session.id
            return old
        }
        if let replaced {
            replaced.finish()
            endLogReaders(of: replaced)
        }
        do {
            guard let node = try await manager.read(stale: true, { $0.node(nodeID) }) else {
                throw APIError(status: 404, code: "not_found", message: "node \(nodeID) is not part of the cluster", hint: "join it again")
            }
            var status = node.status
            status.state = .ready
            status.message = ""
            if !request.hostname.isEmpty { status.hostname = request.hostname }
            if !request.address.isEmpty { status.address = request.address }
            if !request.platform.isEmpty { status.platform = request.platform }
            status.resources = request.resources
            if status != node.status { try await manager.propose(.updateNodeStatus(id: nodeID, status: status)) }
            try await heartbeat(nodeID: nodeID)
            let state = try await manager.read(stale: true) { $0 }
            session.snapshot(state)
        } catch {
            close(session)
            throw error
        }
        return session
    }

    func close(_ session: Session) {
        lock.withLock {
            if sessions[session.id] === session {
                sessions[session.id] = nil
                if sessionByNode[session.nodeID] == session.id { sessionByNode[session.nodeID] = nil }
            }
        }
        session.finish()
        endLogReaders(of: session)
    }

    // MARK: Logs

    /// Asks the agent of `nodeID` for a task's log, when that agent's session
    /// is on this manager (nil otherwise: another manager holds it). The
    /// lines arrive through ``receiveLogs(nodeID:chunk:)``; the stream ends
    /// with the log, or with an error when the agent cannot read it or its
    /// session ends. Ending the stream early tells the agent to stop.
    func taskLogs(nodeID: ObjectID, taskID: ObjectID, follow: Bool, tail: Int?) -> AsyncThrowingStream<[TaskLogLine], any Error>? {
        guard let session = lock.withLock({ sessionByNode[nodeID].flatMap { sessions[$0] } }) else { return nil }
        var generator = SecureRandom()
        let requestID = ObjectID.random(using: &generator).rawValue
        let (stream, continuation) = AsyncThrowingStream<[TaskLogLine], any Error>.makeStream()
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            _ = self.lock.withLock { self.logReaders.removeValue(forKey: requestID) }
        }
        lock.withLock { logReaders[requestID] = (session.id, continuation) }
        session.requestLogs(TaskLogRequest(requestID: requestID, taskID: taskID, follow: follow, tail: tail))
        return stream
    }

    /// Lines an agent sends for a log request; the reply tells it whether to go on.
    func receiveLogs(nodeID: ObjectID, chunk: TaskLogChunk) throws -> TaskLogChunkReply {
        _ = try session(chunk.sessionID, of: nodeID)
        guard let reader = lock.withLock({ logReaders[chunk.requestID] }), reader.sessionID == chunk.sessionID else {
            return TaskLogChunkReply(keepSending: false)
        }
        // An empty chunk (a quiet followed log) goes on too: the reader's writes notice a client that left.
        if !chunk.lines.isEmpty || !chunk.end { reader.continuation.yield(chunk.lines) }
        guard chunk.end else { return TaskLogChunkReply(keepSending: true) }
        if let error = chunk.error {
            reader.continuation.finish(throwing: APIError(status: 502, code: "log_unavailable", message: error, hint: "check the task with `shoal service ps`"))
        } else {
            reader.continuation.finish()
        }
        return TaskLogChunkReply(keepSending: false)
    }

    /// The session's agent is gone: its log readers end with the reason.
    private func endLogReaders(of session: Session) {
        let readers = lock.withLock { logReaders.filter { $0.value.sessionID == session.id }.map(\.value.continuation) }
        for reader in readers {
            reader.finish(throwing: APIError(status: 503, code: "unavailable", message: "the agent of node \(session.nodeID) disconnected while sending the log",
                                             hint: "try again once the node is ready (`shoal node ls`)"))
        }
    }

    private func route(_ event: ClusterEvent) {
        if case .service(let service) = event.object, event.action != .removed {
            // Before the service's tasks: the orchestrator creates them in later entries.
            for session in lock.withLock({ Array(sessions.values) }) { session.noteService(service) }
            return
        }
        guard case .task(let task) = event.object, let nodeID = task.nodeID else { return }
        let session = lock.withLock { sessionByNode[nodeID].flatMap { sessions[$0] } }
        session?.enqueue(event)
    }

    private func session(_ id: String, of nodeID: ObjectID) throws -> Session {
        guard let session = lock.withLock({ sessions[id] }), session.nodeID == nodeID else {
            throw APIError(status: 404, code: "session_unknown", message: "session \(id) of node \(nodeID) is not open on this manager", hint: "open a new session")
        }
        return session
    }

    // MARK: Heartbeats

    /// A heartbeat on `sessionID`.
    func heartbeat(nodeID: ObjectID, sessionID: String) async throws -> HeartbeatReply {
        _ = try session(sessionID, of: nodeID)
        try await heartbeat(nodeID: nodeID)
        return HeartbeatReply(periodMilliseconds: heartbeatPeriodMilliseconds)
    }

    private func heartbeat(nodeID: ObjectID) async throws {
        guard let manager else { return }
        if manager.raft.status.role == .leader {
            try await leaderHeartbeat(nodeID)
        } else {
            _ = try await manager.onLeader(.heartbeat(nodeID: nodeID))
        }
    }

    /// On the leader: moves the node's deadline; a node marked down comes back.
    func leaderHeartbeat(_ nodeID: ObjectID) async throws {
        guard let manager else { return }
        let now = Support.nowMilliseconds()
        lock.withLock { tracker.beat(nodeID, now: now) }
        if let command = try await manager.raft.read(linearizable: false, { HeartbeatTracker.readyCommand(for: nodeID, in: $0) }) {
            _ = try await manager.raft.propose(command, timeMilliseconds: now)
        }
    }

    /// A new leader expects every ready node that holds live tasks to
    /// heartbeat within one deadline (``HeartbeatTracker/leadershipStarted(_:now:)``).
    func leadershipStarted(_ state: ClusterState, now: Int64) {
        lock.withLock { tracker.leadershipStarted(state, now: now) }
    }

    /// On the leader: the nodes whose deadline passed, to be marked down.
    func expiredNodes(now: Int64) -> [ObjectID] {
        lock.withLock { tracker.expire(now: now) }
    }

    /// The commands that mark `expired` down (``HeartbeatTracker/markDownCommands(_:in:)``).
    func markDownCommands(_ expired: [ObjectID], in state: ClusterState) -> [ClusterCommand] {
        lock.withLock { tracker.markDownCommands(expired, in: state) }
    }

    // MARK: Status

    /// Proposes the forward transitions among `reports` for `nodeID`'s own tasks.
    func reportStatus(nodeID: ObjectID, sessionID: String, reports: [TaskStatusReport]) async throws {
        _ = try session(sessionID, of: nodeID)
        guard let manager else { return }
        let commands: [ClusterCommand] = try await manager.read(stale: true) { state in
            DispatchRules.statusCommands(reports.map { ($0.taskID, $0.status) }, from: nodeID, in: state)
        }
        guard !commands.isEmpty else { return }
        do {
            try await manager.propose(commands.count == 1 ? commands[0] : .batch(commands))
        } catch {
            // One stale report refuses the whole batch: send the rest alone.
            guard commands.count > 1 else { return }
            for command in commands { _ = try? await manager.propose(command) }
        }
    }

    // MARK: RPC

    func register(on server: RPCServer) {
        server.registerStream(DispatcherMethods.session, access: .anyNode) { [weak self] request, writer in
            guard let self else { return }
            let session: Session
            do {
                let nodeID = try Self.nodeID(request.caller)
                let body = try WireJSON.decode(SessionRequest.self, from: request.payload)
                session = try await self.openSession(nodeID: nodeID, request: body)
            } catch {
                try await writer.send(WireJSON.encode(DispatcherReply<AssignmentBatch>(error: Self.wireError(error))))
                return
            }
            defer { self.close(session) }
            while let batch = await session.next() {
                try await writer.send(WireJSON.encode(DispatcherReply(value: batch)))
            }
        }
        server.register(DispatcherMethods.heartbeat, access: .anyNode) { [weak self] request in
            var reply = DispatcherReply<HeartbeatReply>()
            do {
                guard let self else { throw APIError(status: 503, code: "stopping", message: "this manager is stopping") }
                let body = try WireJSON.decode(HeartbeatRequest.self, from: request.payload)
                reply.value = try await self.heartbeat(nodeID: try Self.nodeID(request.caller), sessionID: body.sessionID)
            } catch {
                reply.error = Self.wireError(error)
            }
            return WireJSON.encode(reply)
        }
        server.register(DispatcherMethods.logs, access: .anyNode) { [weak self] request in
            var reply = DispatcherReply<TaskLogChunkReply>()
            do {
                guard let self else { throw APIError(status: 503, code: "stopping", message: "this manager is stopping") }
                let body = try WireJSON.decode(TaskLogChunk.self, from: request.payload)
                reply.value = try self.receiveLogs(nodeID: try Self.nodeID(request.caller), chunk: body)
            } catch {
                reply.error = Self.wireError(error)
            }
            return WireJSON.encode(reply)
        }
        server.register(DispatcherMethods.status, access: .anyNode) { [weak self] request in
            var reply = DispatcherReply<DispatcherEmpty>()
            do {
                guard let self else { throw APIError(status: 503, code: "stopping", message: "this manager is stopping") }
                let body = try WireJSON.decode(StatusBatch.self, from: request.payload)
                try await self.reportStatus(nodeID: try Self.nodeID(request.caller), sessionID: body.sessionID, reports: body.reports)
                reply.value = DispatcherEmpty()
            } catch {
                reply.error = Self.wireError(error)
            }
            return WireJSON.encode(reply)
        }
    }

    static func nodeID(_ identity: NodeIdentity?) throws -> ObjectID {
        guard let identity, let id = ObjectID(identity.nodeID) else {
            throw APIError(status: 403, code: "permission_denied", message: "the caller's certificate names no node", hint: "join the cluster")
        }
        return id
    }

    static func wireError(_ error: any Error) -> DispatcherError {
        let apiError = APIError.from(error)
        return DispatcherError(code: apiError.code, message: apiError.message)
    }
}

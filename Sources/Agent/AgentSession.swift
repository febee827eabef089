import ClusterState
import Foundation

/// The agent's line to the dispatcher, apart from what it does with its
/// tasks: opens a session through the connector (and a new one, with
/// backoff, whenever it ends), heartbeats at the period the manager asks
/// for, hands every assignment batch to its owner, and sends the task
/// statuses its owner queues, in batches.
///
/// ``Agent`` runs containers behind it; `SimulatedWorker` (the daemon's
/// scale tests and `shoal-bench dispatcher`) runs a fake runtime behind the
/// same code, so a thousand of them exercise the manager exactly as a
/// thousand real agents would.
///
/// Status reports wait for a change (no timer runs while nothing is to be
/// sent): a queued report wakes the sender, which waits
/// ``Configuration/statusFlushInterval`` to gather more, then sends the
/// newest status of each task. A failed send keeps them for the next
/// session (or the next flush).
public final class AgentSession: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var reconnectInitialBackoff: Duration = .milliseconds(100)
        public var reconnectMaxBackoff: Duration = .seconds(5)
        /// Status changes are sent in batches at most this often.
        public var statusFlushInterval: Duration = .milliseconds(50)
        /// How long a failed status send waits before the next try.
        public var statusRetryDelay: Duration = .milliseconds(500)

        public init() {}
    }

    public let configuration: Configuration
    private let connector: any DispatcherConnector
    private let request: @Sendable () -> SessionRequest
    private let onBatch: @Sendable (AssignmentBatch, any DispatcherConnection) -> Void
    private let lock = NSLock()
    // Guarded by `lock`.
    private var session: (id: String, connection: any DispatcherConnection)?
    private var pendingReports: [ObjectID: ServiceTask.Status] = [:]
    private var loops: [Task<Void, Never>] = []
    private var stopped = false
    private var sessionsOpened = 0
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>

    /// `request` is asked at each session opening (the host's resources may
    /// have changed); `onBatch` gets each batch, in order, on the session's task.
    public init(configuration: Configuration = Configuration(), connector: any DispatcherConnector,
                request: @escaping @Sendable () -> SessionRequest,
                onBatch: @escaping @Sendable (AssignmentBatch, any DispatcherConnection) -> Void) {
        self.configuration = configuration
        self.connector = connector
        self.request = request
        self.onBatch = onBatch
        (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Starts the session and report loops.
    public func start() {
        let session = Task<Void, Never> { [weak self] in await self?.sessionLoop() }
        let reporter = Task<Void, Never> { [weak self] in await self?.reportLoop() }
        lock.withLock { loops = [session, reporter] }
    }

    /// Ends the session (the connection closes) and the loops.
    public func stop() async {
        let (all, current) = lock.withLock { () -> ([Task<Void, Never>], (any DispatcherConnection)?) in
            stopped = true
            defer { loops = [] }
            return (loops, session?.connection)
        }
        for loop in all { loop.cancel() }
        wake.finish()
        await current?.close()
        for loop in all { await loop.value }
    }

    /// Sessions opened so far (tests).
    public var sessionCount: Int { lock.withLock { sessionsOpened } }
    public var isConnected: Bool { lock.withLock { session != nil } }
    public var isStopped: Bool { lock.withLock { stopped } }

    /// Queues `status` as the newest of `taskID` (it replaces one not yet sent).
    /// Callers that decide statuses under a lock of their own queue them under
    /// it too, so two reports of one task are queued in the order decided.
    public func queue(_ taskID: ObjectID, _ status: ServiceTask.Status) {
        lock.withLock { pendingReports[taskID] = status }
        wake.yield()
    }

    /// Drops what was queued for `taskID` (it was removed).
    public func forget(_ taskID: ObjectID) {
        _ = lock.withLock { pendingReports.removeValue(forKey: taskID) }
    }

    // MARK: Session

    private func sessionLoop() async {
        var backoff = configuration.reconnectInitialBackoff
        while !Task.isCancelled && !lock.withLock({ stopped }) {
            var heartbeat: Task<Void, Never>?
            var connection: (any DispatcherConnection)?
            do {
                let opened = try await connector.connect()
                connection = opened
                if lock.withLock({ stopped }) { break }
                let stream = opened.openSession(request())
                for try await batch in stream {
                    if heartbeat == nil {
                        lock.withLock {
                            session = (batch.sessionID, opened)
                            sessionsOpened += 1
                        }
                        // Reports kept from an earlier session go on this one.
                        wake.yield()
                        backoff = configuration.reconnectInitialBackoff
                        heartbeat = Self.heartbeats(on: opened, sessionID: batch.sessionID,
                                                    period: .milliseconds(max(batch.heartbeatPeriodMilliseconds, 10)))
                    }
                    onBatch(batch, opened)
                }
            } catch {
            }
            heartbeat?.cancel()
            lock.withLock { session = nil }
            await connection?.close()
            if Task.isCancelled || lock.withLock({ stopped }) { break }
            try? await Task.sleep(for: Self.jittered(backoff))
            backoff = min(backoff * 2, configuration.reconnectMaxBackoff)
        }
    }

    /// Between half and all of `backoff`, at random: when a manager restarts,
    /// a thousand agents that lost it at the same instant must not all dial
    /// it again at the same instant (each wave of handshakes would time out together).
    static func jittered(_ backoff: Duration) -> Duration {
        let nanoseconds = backoff.components.seconds * 1_000_000_000 + backoff.components.attoseconds / 1_000_000_000
        guard nanoseconds > 1 else { return backoff }
        return .nanoseconds(Int64.random(in: nanoseconds / 2...nanoseconds))
    }

    /// Heartbeats every `period` until cancelled; a refused or failed one
    /// closes the connection, which ends the session (and the next begins).
    private static func heartbeats(on connection: any DispatcherConnection, sessionID: String, period: Duration) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: period)
                if Task.isCancelled { return }
                do {
                    _ = try await connection.heartbeat(HeartbeatRequest(sessionID: sessionID))
                } catch {
                    await connection.close()
                    return
                }
            }
        }
    }

    private func reportLoop() async {
        var iterator = wakes.makeAsyncIterator()
        while !Task.isCancelled {
            guard await iterator.next() != nil else { return }
            try? await Task.sleep(for: configuration.statusFlushInterval)
            let (current, reports) = lock.withLock { () -> ((id: String, connection: any DispatcherConnection)?, [TaskStatusReport]) in
                (session, pendingReports.sorted { $0.key < $1.key }.map { TaskStatusReport(taskID: $0.key, status: $0.value) })
            }
            // No session: the next one wakes this loop when it opens.
            guard let current, !reports.isEmpty else { continue }
            do {
                try await current.connection.report(StatusBatch(sessionID: current.id, reports: reports))
                lock.withLock {
                    for report in reports where pendingReports[report.taskID] == report.status { pendingReports[report.taskID] = nil }
                }
            } catch {
                // Kept; sent again after a pause, or on the next session.
                try? await Task.sleep(for: configuration.statusRetryDelay)
                wake.yield()
            }
            // Reports queued while this batch was on its way.
            if lock.withLock({ !pendingReports.isEmpty && session != nil }) { wake.yield() }
        }
    }
}

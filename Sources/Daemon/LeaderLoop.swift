import ClusterState
import Foundation
import Manager
import Orchestrator
import Scheduler

/// The orchestration loops of the Raft leader: on every committed change
/// (marked dirty by a watch), at the orchestrator's wake-up time and on a
/// periodic safety tick, one pass reconciles services to tasks
/// (``Orchestrator``), places pending tasks (``Scheduler``, whose reasons
/// land on the tasks still pending) and marks down nodes whose heartbeat
/// deadline passed; the commands are proposed in batches. On a manager
/// that is not the leader the loop idles, and starts over (fresh
/// heartbeat deadlines) when it becomes leader.
final class LeaderLoop: @unchecked Sendable {
    /// A full pass at least this often even without changes.
    static let safetyTick: Duration = .seconds(2)
    /// How often deadlines and wake-ups are checked.
    static let checkInterval: Duration = .milliseconds(200)
    static let maxCommandsPerProposal = 500

    weak var manager: ManagerNode?
    let dispatcher: Dispatcher
    let orchestrator = Orchestrator()
    let scheduler = Scheduler()
    private var tasks: [Task<Void, Never>] = []
    private let lock = NSLock()
    private var dirty = true
    /// Passes run since start (tests, figures).
    private(set) var passCount = 0

    init(manager: ManagerNode, dispatcher: Dispatcher) {
        self.manager = manager
        self.dispatcher = dispatcher
    }

    func start() {
        guard let manager else { return }
        let events = manager.raft.watch()
        let (kicks, kick) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        tasks.append(Task { [weak self] in
            for await _ in events {
                guard let self else { return }
                self.lock.withLock { self.dirty = true }
                kick.yield()
            }
        })
        tasks.append(Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.checkInterval)
                kick.yield()
            }
        })
        tasks.append(Task { [weak self] in
            var wasLeader = false
            var nextWakeUp: Int64?
            var lastPass: Int64 = 0
            let safetyMilliseconds = Self.safetyTick.components.seconds * 1000
            for await _ in kicks {
                guard let self, let manager = self.manager else { return }
                let leader = manager.raft.status.role == .leader
                defer { wasLeader = leader }
                guard leader else { continue }
                let now = Support.nowMilliseconds()
                if !wasLeader {
                    guard let state = try? await manager.raft.read(linearizable: false, { $0 }) else { continue }
                    self.dispatcher.leadershipStarted(state, now: now)
                    self.lock.withLock { self.dirty = true }
                }
                await self.markDown(self.dispatcher.expiredNodes(now: now), manager: manager, now: now)
                let wasDirty = self.lock.withLock { () -> Bool in
                    defer { self.dirty = false }
                    return self.dirty
                }
                if wasDirty || (nextWakeUp.map { now >= $0 } ?? false) || now - lastPass >= safetyMilliseconds {
                    lastPass = now
                    nextWakeUp = await self.pass(manager: manager, now: now)
                }
            }
        })
    }

    func stop() {
        for task in tasks { task.cancel() }
        tasks = []
    }

    /// One orchestrator + scheduler pass; returns the next wake-up time.
    private func pass(manager: ManagerNode, now: Int64) async -> Int64? {
        guard let state = try? await manager.raft.read(linearizable: false, { $0 }) else { return nil }
        lock.withLock { passCount += 1 }
        var generator = SystemRandomNumberGenerator()
        let reconciliation = orchestrator.reconcile(state, now: now, idGenerator: &generator)
        await propose(reconciliation.commands, manager: manager, now: now)
        let decision = scheduler.schedule(state)
        await propose(decision.commands + decision.statusUpdates(in: state, now: now), manager: manager, now: now)
        return reconciliation.nextWakeUpMilliseconds
    }

    private func markDown(_ nodes: [ObjectID], manager: ManagerNode, now: Int64) async {
        guard !nodes.isEmpty, let state = try? await manager.raft.read(linearizable: false, { $0 }) else { return }
        let seconds = Double(dispatcher.deadlineMilliseconds) / 1000
        let commands: [ClusterCommand] = nodes.compactMap { id in
            guard var status = state.node(id)?.status, status.state == .ready else { return nil }
            status.state = .down
            status.message = "heartbeat deadline missed: no heartbeat for \(seconds) s"
            return .updateNodeStatus(id: id, status: status)
        }
        await propose(commands, manager: manager, now: now)
    }

    /// Proposes in batches (all or none each); a refused batch is retried
    /// command by command, so one stale compare-and-set does not hold back
    /// the others. Refusals are expected (the next pass decides again).
    private func propose(_ commands: [ClusterCommand], manager: ManagerNode, now: Int64) async {
        var start = 0
        while start < commands.count {
            guard manager.raft.status.role == .leader else { return }
            let chunk = Array(commands[start..<min(start + Self.maxCommandsPerProposal, commands.count)])
            start += chunk.count
            do {
                _ = try await manager.raft.propose(chunk.count == 1 ? chunk[0] : .batch(chunk), timeMilliseconds: now)
            } catch {
                guard chunk.count > 1 else { continue }
                for command in chunk { _ = try? await manager.raft.propose(command, timeMilliseconds: now) }
            }
        }
    }
}

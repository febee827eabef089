import ClusterState
import Foundation
import Manager
import Orchestrator
import Scheduler

/// The orchestration loops of the Raft leader, around the sans-IO
/// ``LeaderCycle`` (which `shoal-sim services` drives too): on every
/// committed change (marked dirty by a watch), at the orchestrator's wake-up
/// time and on a periodic safety tick, one pass reconciles services to tasks
/// (``Orchestrator``), places pending tasks (``Scheduler``, whose reasons
/// land on the tasks still pending) and marks down nodes whose heartbeat
/// deadline passed; the commands are proposed in batches. On a manager
/// that is not the leader the loop idles, and starts over (fresh
/// heartbeat deadlines) when it becomes leader.
///
/// The scheduler works from a ``SchedulingIndex`` (node loads and pending
/// task ids) that the loop keeps from the task change events, so a pass
/// costs what its pending tasks cost, not a sort of the whole task table.
/// It is rebuilt from the store when the loop becomes leader and every
/// ``resyncInterval`` (a guard against a change event the watch dropped).
final class LeaderLoop: @unchecked Sendable {
    /// How often deadlines and wake-ups are checked.
    static let checkInterval: Duration = .milliseconds(LeaderCycle.checkIntervalMilliseconds)
    /// How often the scheduling index is rebuilt from the store anyway.
    static let resyncInterval: Duration = .seconds(30)
    /// Task changes buffered between passes beyond which the index is rebuilt instead.
    static let maxBufferedTaskChanges = 100_000

    weak var manager: ManagerNode?
    let dispatcher: Dispatcher
    /// Pass timing and decisions; only the pass task touches it.
    private var cycle = LeaderCycle()
    private var tasks: [Task<Void, Never>] = []
    private let lock = NSLock()
    private var dirty = true
    /// What the scheduler keeps between passes; only the pass task touches it.
    private var schedulingIndex: SchedulingIndex?
    /// Tasks changed since the last pass (log index, id), in log order, kept while leader.
    private var changedTasks: [(index: UInt64, id: ObjectID)] = []
    private var tracksChanges = false
    /// Set when tracking (re)starts: changes before it were not kept, so the next pass rebuilds.
    private var indexStale = true
    private var passes = 0
    private var rebuilds = 0
    private var nextResyncMilliseconds: Int64 = 0

    init(manager: ManagerNode, dispatcher: Dispatcher) {
        self.manager = manager
        self.dispatcher = dispatcher
    }

    /// Passes run since start (tests, figures).
    var passCount: Int { lock.withLock { passes } }
    /// Scheduling index rebuilds from the whole store (tests): one per leadership and resync.
    var rebuildCount: Int { lock.withLock { rebuilds } }

    func start() {
        guard let manager else { return }
        // Secrets and configs are read by neither the orchestrator nor the
        // scheduler: writing one must not cost a pass (and a read of the state).
        let events = manager.raft.watch(filter: { $0.kind != .secret && $0.kind != .config })
        let (kicks, kick) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        tasks.append(Task { [weak self] in
            for await event in events {
                guard let self else { return }
                self.lock.withLock {
                    self.dirty = true
                    guard event.kind == .task, self.tracksChanges else { return }
                    if self.changedTasks.count < Self.maxBufferedTaskChanges {
                        self.changedTasks.append((event.index, event.id))
                    } else {
                        // Cheaper to rebuild than to remember: the next pass reads the whole store.
                        self.tracksChanges = false
                        self.changedTasks = []
                    }
                }
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
            for await _ in kicks {
                guard let self, let manager = self.manager else { return }
                let leader = manager.raft.status.role == .leader
                defer { wasLeader = leader }
                guard leader else {
                    if wasLeader { self.stopTrackingChanges() }
                    continue
                }
                let now = Support.nowMilliseconds()
                if !wasLeader {
                    // Linearizable: the state holds every entry earlier leaders
                    // committed (ReadIndex waits for this term's first commit),
                    // so the first pass does not create tasks for slots that
                    // already have one.
                    guard let state = try? await manager.raft.read(linearizable: true, { $0 }) else { continue }
                    self.dispatcher.leadershipStarted(state, now: now)
                    self.stopTrackingChanges()
                    self.cycle.leadershipStarted()
                }
                let expired = self.dispatcher.expiredNodes(now: now)
                if !expired.isEmpty, let state = try? await manager.raft.read(linearizable: false, { $0 }) {
                    await self.propose(self.dispatcher.markDownCommands(expired, in: state), manager: manager, now: now)
                }
                let wasDirty = self.lock.withLock { () -> Bool in
                    defer { self.dirty = false }
                    return self.dirty
                }
                if wasDirty { self.cycle.markDirty() }
                if self.cycle.isPassDue(now: now) {
                    await self.pass(manager: manager, now: now)
                }
            }
        })
    }

    func stop() {
        for task in tasks { task.cancel() }
        tasks = []
    }

    /// One orchestrator + scheduler pass (``LeaderCycle/pass(_:now:idGenerator:schedule:)``), placing from the kept index.
    private func pass(manager: ManagerNode, now: Int64) async {
        // Before the read: every change the state below lacks is then buffered (the orchestrator's new tasks too).
        lock.withLock {
            if !tracksChanges {
                tracksChanges = true
                changedTasks = []
                indexStale = true
            }
        }
        guard let state = try? await manager.raft.read(linearizable: false, { $0 }) else { return }
        lock.withLock { passes += 1 }
        var generator = SystemRandomNumberGenerator()
        let scheduler = cycle.scheduler
        let pass = cycle.pass(state, now: now, idGenerator: &generator, schedule: { self.schedule($0, now: now, with: scheduler) })
        await propose(pass.reconcileCommands, manager: manager, now: now)
        await propose(pass.placementCommands, manager: manager, now: now)
    }

    /// Brings the scheduling index up to `state` (the changes it already
    /// holds, or a rebuild) and places the pending tasks.
    private func schedule(_ state: ClusterState, now: Int64, with scheduler: Scheduler) -> SchedulingDecision {
        let changes: [(index: UInt64, id: ObjectID)]? = lock.withLock {
            // Changes up to `state` are in it; later ones wait for the pass that reads them.
            let applied = changedTasks.prefix { $0.index <= state.appliedIndex }
            changedTasks.removeFirst(applied.count)
            defer { indexStale = false }
            guard tracksChanges, !indexStale, schedulingIndex != nil, now < nextResyncMilliseconds else { return nil }
            return Array(applied)
        }
        var index: SchedulingIndex
        if let changes, let kept = schedulingIndex {
            index = kept
            schedulingIndex = nil
            for change in changes { index.update(change.id, to: state.task(change.id)) }
        } else {
            index = SchedulingIndex(tasks: state.tasks)
            nextResyncMilliseconds = now + Self.resyncInterval.components.seconds * 1000
            lock.withLock { rebuilds += 1 }
        }
        let decision = index.schedule(with: scheduler, nodes: state.nodes, task: { state.task($0) })
        schedulingIndex = index
        return decision
    }

    /// Stops keeping changes (a new leadership or a lost one); the next pass rebuilds the index.
    private func stopTrackingChanges() {
        lock.withLock {
            tracksChanges = false
            changedTasks = []
        }
    }

    /// Proposes in batches (all or none each); a refused batch is retried
    /// command by command, so one stale compare-and-set does not hold back
    /// the others. Refusals are expected (the next pass decides again).
    private func propose(_ commands: [ClusterCommand], manager: ManagerNode, now: Int64) async {
        for proposal in LeaderCycle.proposals(commands) {
            guard manager.raft.status.role == .leader else { return }
            do {
                _ = try await manager.raft.propose(proposal, timeMilliseconds: now)
            } catch {
                guard case .batch(let chunk) = proposal else { continue }
                for command in chunk { _ = try? await manager.raft.propose(command, timeMilliseconds: now) }
            }
        }
    }
}

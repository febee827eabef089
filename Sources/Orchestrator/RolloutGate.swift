import ClusterState

/// What the reconcile pass does with one slot's outdated tasks, as the rollout says.
struct SlotUpdate {
    /// Keep the outdated task: the rollout has not reached its slot.
    var hold = false
    /// Keep outdated tasks running until a current task runs.
    var startFirst = false
}

/// One service's rolling update (or rollback) in one reconcile pass:
/// which outdated slots may be replaced now, and what the rollout's status
/// becomes. Everything it needs is in the state (the service's update
/// config and ``UpdateStatus``, the tasks' templates, creation indexes and
/// `runningSinceMilliseconds`) and in `now`, so a new leader picks a
/// rollout up where the old one left it.
///
/// Docker's semantics, per parameter of ``UpdateConfig``:
/// - `parallelism`: at most this many slots are being replaced at once (0:
///   all). A slot is being replaced from the moment its old task is asked
///   to stop (stop-first) or its new task is created (start-first) until
///   its new task has run for `delay`, or has failed (the failure counts;
///   the restart policy takes the slot over);
/// - `delay`: a replaced slot holds its place in the parallelism for this
///   long after its new task runs, so batches start this far apart;
/// - `order`: stop-first stops the old task before creating the new one;
///   start-first creates the new one and stops the old one once the new one
///   runs (``ReconcilePass`` does both; the gate tells it which);
/// - `monitor` and `maxFailureRatio`: a task this rollout created that
///   fails, is rejected or ends before it has run for `monitor` is a
///   failure; once failures exceed the ratio of the service's slots,
///   `failureAction` runs: `pause` (status paused, no further slots;
///   `service update` resumes, `service rollback` goes back), `continue`
///   (nothing), `rollback` (the previous spec comes back and rolls out
///   with the rollback config; a failing rollback pauses);
/// - the rollout completes once no slot is outdated or being replaced and
///   its last new task has run for `monitor`.
///
/// Slots are replaced lowest first (by slot number, or by node id for
/// global services). Outdated tasks that never reached a node run nothing
/// and are replaced at once, outside the parallelism.
struct RolloutGate<Key: Hashable & Comparable> {
    /// A slot as the pass sees it: its tasks oldest first, and whether the service still wants it.
    struct Slot {
        var key: Key
        var tasks: [ServiceTask]
        var wanted: Bool
    }

    private(set) var holding: Set<Key> = []
    let startFirst: Bool
    /// Status transitions to propose (pause, rollback, completion).
    private(set) var commands: [ClusterCommand] = []
    private(set) var wakeUpMilliseconds: Int64?

    func update(for key: Key) -> SlotUpdate {
        SlotUpdate(hold: holding.contains(key), startFirst: startFirst)
    }

    private enum Progress { case settled, waiting, busy }

    init(service: Service, slots: [Slot], facts: TaskFacts, rules: NodeRules, now: Int64) {
        let status = service.updateStatus
        let config = status?.isRollback == true ? service.spec.rollback : service.spec.update
        startFirst = config.order == .startFirst
        let startIndex = status?.startedIndex ?? 0
        // A service without a status (stored before rollouts had one) rolls out as if updating.
        let active = status?.isActive ?? true

        func createdByRollout(_ task: ServiceTask) -> Bool {
            TaskFacts.isCurrent(task, of: service) && task.meta.createdIndex >= startIndex
        }
        func mayStay(_ task: ServiceTask) -> Bool {
            task.nodeID.map { rules.mayKeep(on: facts.nodes[$0]) } ?? false
        }
        var wakeUp: Int64?
        func progress(_ slot: Slot) -> Progress {
            let tasks = slot.tasks
            let liveOutdated = tasks.filter {
                facts.isActive($0) && TaskFacts.isDesiredRunning($0) && !TaskFacts.isCurrent($0, of: service) && !facts.isUnassigned($0) && mayStay($0)
            }
            let stoppingOutdated = tasks.contains {
                facts.isActive($0) && !TaskFacts.isDesiredRunning($0) && !TaskFacts.isCurrent($0, of: service) && !facts.isUnassigned($0)
            }
            let liveCurrent = tasks.last { facts.isActive($0) && TaskFacts.isDesiredRunning($0) && TaskFacts.isCurrent($0, of: service) }
            guard let current = liveCurrent else {
                if !liveOutdated.isEmpty { return stoppingOutdated ? .busy : .waiting }
                if stoppingOutdated { return .busy }
                // An empty slot about to get its new task (one whose new task
                // failed is done with: the failure counted, the restart policy takes over).
                if let latest = tasks.last, !TaskFacts.isCurrent(latest, of: service) { return .busy }
                return .settled
            }
            if !liveOutdated.isEmpty { return .busy }
            guard createdByRollout(current) else { return .settled }
            // A restart of a new task that failed: the rollout moved on when it failed (the failure counted).
            let restart = tasks.contains { $0.id != current.id && createdByRollout($0) && $0.status.state.isTerminal }
            guard current.status.state >= .running, let since = current.runningSinceMilliseconds else { return restart ? .settled : .busy }
            if now < since + config.delayMilliseconds {
                wakeUp = min(wakeUp ?? .max, since + config.delayMilliseconds)
                return .busy
            }
            return .settled
        }

        var waiting: [Key] = []
        var busy = 0
        for slot in slots where slot.wanted {
            switch progress(slot) {
            case .waiting: waiting.append(slot.key)
            case .busy: busy += 1
            case .settled: break
            }
        }
        waiting.sort()
        var allowance = active ? (config.parallelism == 0 ? waiting.count : max(0, config.parallelism - busy)) : 0

        // Failures of this rollout's tasks within their monitoring window.
        var failures: [ServiceTask] = []
        if active {
            for slot in slots {
                for task in slot.tasks where createdByRollout(task) && [.failed, .rejected, .complete].contains(task.status.state) {
                    let withinMonitor = task.runningSinceMilliseconds.map { task.status.timestampMilliseconds - $0 <= config.monitorMilliseconds } ?? true
                    if withinMonitor { failures.append(task) }
                }
            }
        }
        let slotCount = max(1, slots.filter(\.wanted).count)
        if let status, active, let first = failures.first, Double(failures.count) / Double(slotCount) > config.maxFailureRatio {
            let what = "failure or early termination of task \(first.id)"
            switch (config.failureAction, status.isRollback) {
            case (.continue, _):
                break
            case (.rollback, false) where service.previousSpec != nil:
                allowance = 0
                commands.append(.batch([
                    .rollbackService(id: service.id, expectedVersion: service.meta.version),
                    .setServiceUpdateStatus(id: service.id, expectedVersion: nil, state: .rollbackStarted, message: "update rolled back due to \(what)"),
                ]))
            default:
                allowance = 0
                commands.append(.setServiceUpdateStatus(id: service.id, expectedVersion: service.meta.version,
                                                        state: status.isRollback ? .rollbackPaused : .paused,
                                                        message: "\(status.isRollback ? "rollback" : "update") paused due to \(what)"))
            }
        }
        holding = Set(waiting.dropFirst(allowance))

        // Completion: nothing outdated or under way, and the last new task monitored.
        if let status, active, commands.isEmpty, waiting.isEmpty, busy == 0 {
            let monitoredUntil = slots.flatMap(\.tasks).filter { createdByRollout($0) && $0.status.state == .running }
                .compactMap(\.runningSinceMilliseconds).map { $0 + config.monitorMilliseconds }.max() ?? now
            if now >= monitoredUntil {
                commands.append(.setServiceUpdateStatus(id: service.id, expectedVersion: service.meta.version,
                                                        state: status.isRollback ? .rollbackCompleted : .completed,
                                                        message: status.isRollback ? "rollback completed" : "update completed"))
            } else {
                wakeUp = min(wakeUp ?? .max, monitoredUntil)
            }
        }
        wakeUpMilliseconds = wakeUp
    }
}

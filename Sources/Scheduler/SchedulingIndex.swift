import ClusterState

/// What the leader keeps between scheduling passes so that a pass costs what
/// its pending tasks cost, not what every task in the store costs: the
/// ``NodeLoads`` of the placed tasks and the ids of the tasks waiting for a
/// node.
///
/// The leader builds it from the store once (``init(tasks:)``, when it
/// becomes leader or resynchronises), then tells it each task that changed
/// as it now is in the store (``update(_:to:)``, from the change events) and
/// calls ``schedule(with:nodes:task:)`` each pass. A pass sorts nothing but
/// the nodes and its pending tasks: O(nodes + N log nodes) for N pending.
///
/// The store stays the truth. A pass looks every pending id up in the
/// state it read, so a task that changed after the last update is never
/// placed from stale data; an assignment the store refused (its version
/// moved on) is uncounted again as soon as a pass sees the task pending.
/// Sets are only looked up or fed to the scheduler, which sorts its input:
/// hash order never reaches a decision.
public struct SchedulingIndex: Sendable, Equatable {
    /// What the placed tasks hold on each node.
    public private(set) var loads = NodeLoads()
    /// Each task counted in `loads`, as it was counted (to take it out again).
    private var counted: [ObjectID: ServiceTask] = [:]
    /// Tasks that were pending when last seen (some may have been assigned since).
    private var pendingIDs: Set<ObjectID> = []

    public init() {}

    /// The index of a whole store: O(tasks).
    public init<Tasks: Sequence>(tasks: Tasks) where Tasks.Element == ServiceTask {
        for task in tasks { update(task.id, to: task) }
    }

    /// How many tasks are waiting for a node (as last seen).
    public var pendingCount: Int { pendingIDs.count }

    /// Takes task `id` as it now is in the store (`nil`: removed).
    public mutating func update(_ id: ObjectID, to task: ServiceTask?) {
        if let old = counted.removeValue(forKey: id) { loads.remove(old) }
        guard let task else {
            pendingIDs.remove(id)
            return
        }
        if NodeLoads.holdsNode(task) {
            loads.add(task)
            counted[id] = task
        }
        if Self.waitsForNode(task) { pendingIDs.insert(id) } else { pendingIDs.remove(id) }
    }

    /// Places the pending tasks on `nodes` and counts the assignments it
    /// returns. `task` looks a task up in the state the pass read; the
    /// caller proposes the decision (as ``Scheduler/schedule(_:)``'s).
    public mutating func schedule(with scheduler: Scheduler, nodes: [Node], task: (ObjectID) -> ServiceTask?) -> SchedulingDecision {
        var pending: [ServiceTask] = []
        pending.reserveCapacity(pendingIDs.count)
        for id in pendingIDs {
            guard let current = task(id), Self.waitsForNode(current) else { continue }
            // A pending task holds no node: an earlier assignment of it was refused.
            if let old = counted.removeValue(forKey: id) { loads.remove(old) }
            pending.append(current)
        }
        let decision = scheduler.schedule(nodes: nodes, pending: pending, loads: &loads)
        guard !decision.assignments.isEmpty else { return decision }
        var byID: [ObjectID: ServiceTask] = [:]
        byID.reserveCapacity(pending.count)
        for task in pending { byID[task.id] = task }
        for assignment in decision.assignments {
            // Kept pending until the store's change says otherwise, so a refused assignment is placed again.
            guard var placed = byID[assignment.taskID] else { continue }
            placed.nodeID = assignment.nodeID
            counted[placed.id] = placed
        }
        return decision
    }

    /// True for a task the scheduler places (the filter of ``Scheduler/schedule(nodes:pending:loads:)``).
    static func waitsForNode(_ task: ServiceTask) -> Bool {
        (task.status.state == .pending || task.status.state == .new) && task.desiredState <= .running
    }
}

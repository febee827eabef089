import ClusterState
import Scheduler

/// Reconciles services to tasks (swarmkit's replicated, global and job
/// orchestrators, restart supervisor, constraint enforcer and task reaper in
/// one pure function). From a state it derives the commands that move the
/// tasks toward the services' specs:
///
/// - replicated services keep slots 1...replicas, each with one task;
///   scaling down stops the highest slots (the newest) first;
/// - global services keep one task on each node that is ready, active and
///   allowed by the placement rules; a node that is drained or no longer
///   allowed loses its task, a paused one keeps it but gets no new one;
/// - replicated jobs run slots 1...completions, at most `maxConcurrent` at
///   once; global jobs complete once on each eligible node;
/// - the restart policy decides whether a slot whose task ended gets a
///   replacement: condition (`none`; `on-failure`: any end but `complete`;
///   `any`), delay counted from the task's terminal status timestamp (the
///   slot stays empty until `now >= endedAt + delay`, and the pass returns
///   that time as its wake-up), max attempts counted over the restarts whose
///   failures fall within the window before this failure (kept on the task
///   in ``ServiceTask/restartHistoryMilliseconds``, so the count survives
///   history retention and a leader change). A slot that used up its
///   attempts stays empty until the service is updated;
/// - tasks on a node that is down or gone are replaced at once; tasks on a
///   drained node are stopped and replaced once they have stopped;
/// - a task whose template or force-update counter is older than its
///   service's is replaced as a rolling update (``RolloutGate``: the
///   service's update config, or its rollback config during a rollback —
///   parallelism, delay, stop-first or start-first order, monitor window,
///   max failure ratio, failure action pause/continue/rollback), with the
///   rollout's status kept in ``UpdateStatus``; a stop-first slot never
///   holds two live tasks, a start-first one briefly holds the old and the
///   new;
/// - a task that ended is set to desired shutdown when its replacement is
///   created (or when its slot is no longer wanted), as Docker shows it;
/// - jobs count only completions of their current template: a job whose
///   template or force-update counter changes runs again;
/// - tasks of removed services are removed once stopped; each slot keeps
///   its newest ``taskHistoryRetentionPerSlot`` terminal tasks.
///
/// It writes desired state only (desired state, new tasks, removal of
/// stopped ones) and never an observed state. The manager's leader calls
/// ``reconcile(_:now:idGenerator:)`` after applying changes and at the
/// returned wake-up time; running it twice on the same state proposes the
/// same kind of work twice, which compare-and-set refuses, so a pass may be
/// repeated freely.
public struct Orchestrator: Sendable {
    /// Docker's `--task-history-limit` default.
    public static let defaultTaskHistoryRetentionPerSlot = 5

    /// Terminal tasks kept per slot (per node for global services).
    public var taskHistoryRetentionPerSlot: Int
    /// A defect to plant, for checker tests. Ignored by release builds.
    public var plantedBug: ServicesPlantedBug?

    public init(taskHistoryRetentionPerSlot: Int = Orchestrator.defaultTaskHistoryRetentionPerSlot, plantedBug: ServicesPlantedBug? = nil) {
        precondition(taskHistoryRetentionPerSlot >= 1, "a slot must keep its latest terminal task to apply the restart policy")
        self.taskHistoryRetentionPerSlot = taskHistoryRetentionPerSlot
        self.plantedBug = plantedBug
    }

    /// One pass over every service. `now` is the proposer's clock in
    /// milliseconds (compared with tasks' status timestamps for restart
    /// delays); new task ids come from `idGenerator`. Deterministic: the same
    /// state, time and generator give the same commands.
    ///
    /// `only` limits the pass to these services (live or removed), for a
    /// caller that knows what changed since its last pass (``LeaderCycle``):
    /// a service's commands depend only on the service, its tasks, the
    /// nodes and `now`, and come out exactly as a full pass would give them.
    public func reconcile<Generator: RandomNumberGenerator>(_ state: ClusterState, now: Int64, only: Set<ObjectID>? = nil,
                                                            idGenerator: inout Generator) -> Reconciliation {
        var pass = ReconcilePass(state: state, now: now, retention: taskHistoryRetentionPerSlot, generator: idGenerator,
                                 keepsReplacedTasks: ServicesPlantedBug.isPlanted(.orchestratorKeepsReplacedTask, in: plantedBug))
        pass.run(only: only)
        idGenerator = pass.generator
        return pass.result
    }
}

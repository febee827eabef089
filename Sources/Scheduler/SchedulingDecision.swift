import ClusterState

/// What one scheduling pass decided. The caller proposes ``commands`` (each
/// is compare-and-set on the task's version, so a task the orchestrator
/// changed meanwhile is refused and simply scheduled again next pass), and
/// may show each ``UnplacedTask/reason`` on the task (see
/// ``statusUpdates(in:now:)``).
public struct SchedulingDecision: Sendable, Equatable {
    public struct Assignment: Sendable, Equatable {
        public var taskID: ObjectID
        public var nodeID: ObjectID
        /// The task's version when the scheduler read it.
        public var expectedVersion: UInt64

        public var command: ClusterCommand { .assignTask(id: taskID, expectedVersion: expectedVersion, nodeID: nodeID) }
    }

    public struct UnplacedTask: Sendable, Equatable {
        public var taskID: ObjectID
        public var serviceID: ObjectID
        /// `no suitable node (2 nodes lack 4 GiB memory; 1 node is drained)`.
        public var reason: String
    }

    /// In placement order.
    public var assignments: [Assignment] = []
    /// In task order (service, slot, id).
    public var unplaced: [UnplacedTask] = []
    /// How many times a filter looked at a node: the cost measure of a pass.
    public var filterEvaluations = 0

    /// One `assignTask` per assignment.
    public var commands: [ClusterCommand] { assignments.map(\.command) }

    /// `updateTaskStatus` commands that put each unplaced task's reason in its
    /// pending status message, only for tasks whose message differs (so a
    /// steady state proposes nothing). The scheduler owns the observed state
    /// of tasks that no agent has yet.
    public func statusUpdates(in state: ClusterState, now: Int64) -> [ClusterCommand] {
        unplaced.compactMap { unplaced in
            guard let task = state.task(unplaced.taskID), task.status.state == .pending, task.status.message != unplaced.reason else { return nil }
            return .updateTaskStatus(id: task.id, status: ServiceTask.Status(state: .pending, timestampMilliseconds: now, message: unplaced.reason))
        }
    }
}

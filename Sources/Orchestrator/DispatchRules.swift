import ClusterState

/// The dispatcher's decisions about agent traffic, sans-IO: which tasks an
/// agent's assignment stream carries, and which of its status reports the
/// leader proposes. The manager's Dispatcher and `shoal-sim services` call
/// the same functions.
public enum DispatchRules {
    /// Tasks an agent acts on: assigned (or later), or told to stop.
    public static func concerns(_ task: ServiceTask) -> Bool {
        task.status.state >= .assigned || task.desiredState > .running
    }

    /// The `updateTaskStatus` commands for the reports of `nodeID` that are
    /// forward transitions of its own tasks (others are dropped: a stale
    /// report, or a task since moved or removed). The caller proposes them
    /// as one batch, and each alone if the batch is refused.
    public static func statusCommands(_ reports: [(taskID: ObjectID, status: ServiceTask.Status)], from nodeID: ObjectID,
                                      in state: ClusterState) -> [ClusterCommand] {
        reports.compactMap { report in
            guard let task = state.task(report.taskID), task.nodeID == nodeID else { return nil }
            let current = task.status.state
            if report.status.state < current || (current.isTerminal && report.status.state != current) || report.status == task.status { return nil }
            return .updateTaskStatus(id: report.taskID, status: report.status)
        }
    }
}

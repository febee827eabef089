import ClusterState
import Scheduler

/// How the orchestrator reads one task against the current cluster.
struct TaskFacts {
    let nodes: [ObjectID: Node]

    /// The task's node is gone or down: it can no longer be confirmed
    /// stopped or running, so its slot is replaced elsewhere (swarmkit's
    /// restart of tasks on down nodes). Only tasks past pending have a node that matters.
    func isLost(_ task: ServiceTask) -> Bool {
        guard !task.status.state.isTerminal, task.status.state > .pending, let nodeID = task.nodeID else { return false }
        guard let node = nodes[nodeID] else { return true }
        return node.status.state == .down
    }

    /// Holds its slot: not terminal, not lost.
    func isActive(_ task: ServiceTask) -> Bool {
        !task.status.state.isTerminal && !isLost(task)
    }

    /// Never reached an agent: removing it cannot leave a container behind.
    func isUnassigned(_ task: ServiceTask) -> Bool {
        task.status.state <= .pending
    }

    static func isCurrent(_ task: ServiceTask, of service: Service) -> Bool {
        task.template == service.spec.task && task.serviceForceUpdate >= service.forceUpdate
    }

    /// Oldest first: the order tasks of one slot were created in.
    static func creationOrder(_ lhs: ServiceTask, _ rhs: ServiceTask) -> Bool {
        (lhs.meta.createdIndex, lhs.id) < (rhs.meta.createdIndex, rhs.id)
    }

    static func isDesiredRunning(_ task: ServiceTask) -> Bool {
        task.desiredState <= .running
    }
}

/// A service's placement rules as the orchestrator needs them: which nodes
/// may keep its tasks and which may get new ones (global services), and
/// which running tasks sit where they no longer may (swarmkit's constraint
/// enforcer). Rules that do not parse are not enforced here: the scheduler
/// reports them as the reason the tasks stay pending.
struct NodeRules {
    let constraints: [PlacementConstraint]
    let platforms: [String]

    init(_ template: TaskTemplate) {
        constraints = (try? PlacementConstraint.parse(all: template.placement.constraints)) ?? []
        platforms = template.placement.platforms
    }

    func allows(_ node: Node) -> Bool {
        constraints.allSatisfy { $0.isSatisfied(by: node) } && Platform.node(node, runsAnyOf: platforms)
    }

    /// A node where a task of this template may stay.
    func mayKeep(on node: Node?) -> Bool {
        guard let node else { return false }
        return node.spec.availability != .drain && allows(node)
    }

    /// A node that gets a task of a global service.
    func mayStart(on node: Node) -> Bool {
        node.status.state == .ready && node.spec.availability == .active && allows(node)
    }
}

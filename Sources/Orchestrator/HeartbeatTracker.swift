import ClusterState

/// The leader's view of which nodes are alive (the dispatcher's session
/// core, sans-IO: time is an input). A node is alive while its last
/// heartbeat is younger than the deadline (``deadlineMultiplier`` periods,
/// so one lost heartbeat is not a death); ``expire(now:)`` names the nodes
/// whose deadline passed, once each.
///
/// The manager's Dispatcher and LeaderLoop drive it, and so does
/// `shoal-sim services`: a heartbeat calls ``beat(_:now:)`` and proposes
/// ``readyCommand(for:in:)``; a new leader calls
/// ``leadershipStarted(_:now:)``; the leader's loop proposes
/// ``markDownCommands(_:in:)`` for what ``expire(now:)`` returns.
public struct HeartbeatTracker: Sendable {
    /// Swarm's grace: three periods.
    public static let deadlineMultiplier: Int64 = 3

    public var periodMilliseconds: Int64
    public private(set) var deadlines: [ObjectID: Int64] = [:]

    public init(periodMilliseconds: Int64) {
        precondition(periodMilliseconds > 0, "a heartbeat period must be positive")
        self.periodMilliseconds = periodMilliseconds
    }

    public var deadlineMilliseconds: Int64 { periodMilliseconds * Self.deadlineMultiplier }

    /// A heartbeat (or a session opening) from `node` at `now`.
    public mutating func beat(_ node: ObjectID, now: Int64) {
        deadlines[node] = now + deadlineMilliseconds
    }

    /// A node the leader must hear from although it never has (it held
    /// tasks when this leader took over): it gets one full deadline.
    public mutating func expect(_ node: ObjectID, now: Int64) {
        if deadlines[node] == nil { deadlines[node] = now + deadlineMilliseconds }
    }

    public mutating func forget(_ node: ObjectID) {
        deadlines[node] = nil
    }

    /// Nodes whose deadline passed, by id; they are no longer tracked.
    public mutating func expire(now: Int64) -> [ObjectID] {
        let expired = deadlines.filter { $0.value <= now }.map(\.key).sorted()
        for node in expired { deadlines[node] = nil }
        return expired
    }

    /// A new leader expects every ready node that holds live tasks to
    /// heartbeat within one deadline (nodes without tasks are not chased),
    /// and so every node it still tracks from an earlier term as leader:
    /// those nodes may have heartbeated to other leaders since, so their old
    /// deadlines would mark live nodes down (shoal-sim services found it).
    public mutating func leadershipStarted(_ state: ClusterState, now: Int64) {
        var fresh = HeartbeatTracker(periodMilliseconds: periodMilliseconds)
        var holdsLiveTasks = Set<ObjectID>()
        for task in state.tasks where !task.status.state.isTerminal {
            if let nodeID = task.nodeID { holdsLiveTasks.insert(nodeID) }
        }
        for node in state.nodes where node.status.state == .ready && holdsLiveTasks.contains(node.id) {
            fresh.expect(node.id, now: now)
        }
        for (node, deadline) in deadlines where deadline > now { fresh.expect(node, now: now) }
        self = fresh
    }

    /// The command that marks `nodeID` ready again after a heartbeat, or nil
    /// when it is ready already (or unknown).
    public static func readyCommand(for nodeID: ObjectID, in state: ClusterState) -> ClusterCommand? {
        guard let node = state.node(nodeID), node.status.state != .ready else { return nil }
        var status = node.status
        status.state = .ready
        status.message = ""
        return .updateNodeStatus(id: nodeID, status: status)
    }

    /// The commands that mark `expired` nodes down (those still ready); the
    /// orchestrator then replaces their tasks.
    public func markDownCommands(_ expired: [ObjectID], in state: ClusterState) -> [ClusterCommand] {
        let seconds = Double(deadlineMilliseconds) / 1000
        return expired.compactMap { id in
            guard var status = state.node(id)?.status, status.state == .ready else { return nil }
            status.state = .down
            status.message = "heartbeat deadline missed: no heartbeat for \(seconds) s"
            return .updateNodeStatus(id: id, status: status)
        }
    }
}

import ClusterState

/// The leader's view of which nodes are alive (the dispatcher's session
/// core, sans-IO: time is an input). A node is alive while its last
/// heartbeat is younger than the deadline (``deadlineMultiplier`` periods,
/// so one lost heartbeat is not a death); ``expire(now:)`` names the nodes
/// whose deadline passed, once each.
struct HeartbeatTracker: Sendable {
    /// Swarm's grace: three periods.
    static let deadlineMultiplier: Int64 = 3

    var periodMilliseconds: Int64
    private(set) var deadlines: [ObjectID: Int64] = [:]

    init(periodMilliseconds: Int64) {
        precondition(periodMilliseconds > 0, "a heartbeat period must be positive")
        self.periodMilliseconds = periodMilliseconds
    }

    var deadlineMilliseconds: Int64 { periodMilliseconds * Self.deadlineMultiplier }

    /// A heartbeat (or a session opening) from `node` at `now`.
    mutating func beat(_ node: ObjectID, now: Int64) {
        deadlines[node] = now + deadlineMilliseconds
    }

    /// A node the leader must hear from although it never has (it held
    /// tasks when this leader took over): it gets one full deadline.
    mutating func expect(_ node: ObjectID, now: Int64) {
        if deadlines[node] == nil { deadlines[node] = now + deadlineMilliseconds }
    }

    mutating func forget(_ node: ObjectID) {
        deadlines[node] = nil
    }

    /// Nodes whose deadline passed, by id; they are no longer tracked.
    mutating func expire(now: Int64) -> [ObjectID] {
        let expired = deadlines.filter { $0.value <= now }.map(\.key).sorted()
        for node in expired { deadlines[node] = nil }
        return expired
    }
}

import ClusterState

/// What one reconcile pass decided. The caller proposes ``commands`` in
/// order (each may fail on its own: desired-state writes are compare-and-set
/// on the version read, and a failed one is simply decided again on the next
/// pass) and calls ``Orchestrator/reconcile(_:now:idGenerator:)`` again when
/// the state changes or at ``nextWakeUpMilliseconds``, whichever comes first.
public struct Reconciliation: Sendable, Equatable {
    public var commands: [ClusterCommand] = []
    /// The earliest time a restart delay ends (a slot then gets its
    /// replacement); nil: nothing waits on time, reconcile on changes only.
    public var nextWakeUpMilliseconds: Int64?
    /// The same per service reconciled (a service absent waits on no time),
    /// so that a pass over only some services knows which others to wake.
    public var wakeUpsByService: [ObjectID: Int64] = [:]

    public init(commands: [ClusterCommand] = [], nextWakeUpMilliseconds: Int64? = nil) {
        self.commands = commands
        self.nextWakeUpMilliseconds = nextWakeUpMilliseconds
    }

    mutating func wakeUp(at time: Int64, for serviceID: ObjectID) {
        nextWakeUpMilliseconds = min(nextWakeUpMilliseconds ?? time, time)
        wakeUpsByService[serviceID] = min(wakeUpsByService[serviceID] ?? time, time)
    }
}

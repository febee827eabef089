/// The recent changes, for watchers that resume from an index (`shoal
/// events --since`, dispatcher streams). Bounded: a watcher that falls
/// further behind than `capacity` events must list the state again.
public struct ChangeLog: Sendable {
    public let capacity: Int
    private var events: [ClusterEvent] = []
    private var start = 0
    /// Index of the oldest change that fell out of the log (0: none yet).
    public private(set) var truncatedThroughIndex: UInt64 = 0

    public init(capacity: Int = 10_000) {
        precondition(capacity > 0, "a change log needs room for at least one event")
        self.capacity = capacity
    }

    public mutating func append(_ newEvents: [ClusterEvent]) {
        for event in newEvents {
            if events.count - start == capacity {
                truncatedThroughIndex = events[start].index
                start += 1
                if start > capacity {
                    events.removeFirst(start)
                    start = 0
                }
            }
            events.append(event)
        }
    }

    /// Changes after `index`, oldest first; nil if some of them were dropped.
    public func events(after index: UInt64) -> [ClusterEvent]? {
        if index < truncatedThroughIndex { return nil }
        return events[start...].filter { $0.index > index }
    }
}

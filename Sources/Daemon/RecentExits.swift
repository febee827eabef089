/// The exits of the last `capacity` removed `--rm` containers, by id and by
/// name, so a `wait` that comes after the removal still gets the exit code
/// (`docker run --rm` then `docker wait` racing it). Full, it forgets the
/// oldest container only (first in, first out): a container that exited
/// just now is always found, however many came before it.
///
/// Not thread-safe: the engine holds its lock around every call.
struct RecentExits {
    let capacity: Int
    /// Keys of each remembered container, oldest first (a few hundred at
    /// most: removing the first is cheap).
    private var order: [(sequence: UInt64, keys: [String])] = []
    /// Each key's exit and the sequence number of the container that set it
    /// (a name reused by a later container belongs to that one).
    private var entries: [String: (sequence: UInt64, reply: ContainerWaitReply)] = [:]
    private var nextSequence: UInt64 = 0

    init(capacity: Int) {
        precondition(capacity > 0, "RecentExits needs room for at least one container, not \(capacity)")
        self.capacity = capacity
    }

    /// How many containers are remembered.
    var count: Int { order.count }

    /// Remembers `reply` under each of `keys` (the container's id and name),
    /// forgetting the oldest container first when full.
    mutating func remember(_ reply: ContainerWaitReply, keys: [String]) {
        if count == capacity { forgetOldest() }
        let sequence = nextSequence
        nextSequence += 1
        for key in keys { entries[key] = (sequence, reply) }
        order.append((sequence, keys))
    }

    subscript(key: String) -> ContainerWaitReply? { entries[key]?.reply }

    private mutating func forgetOldest() {
        let oldest = order.removeFirst()
        // Only what that container still holds: its name may have gone to a newer one.
        for key in oldest.keys where entries[key]?.sequence == oldest.sequence { entries[key] = nil }
    }
}

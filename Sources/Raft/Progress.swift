/// A leader's view of one follower's log (Raft Figure 2's nextIndex and
/// matchIndex), plus the flow-control state that decides what to send next.
struct Progress {
    enum State: Equatable {
        /// One append at a time until the follower's log position is found.
        case probe
        /// Optimistic pipelining within the in-flight window.
        case replicate
        /// A snapshot was sent; waiting for the follower to report it installed.
        case snapshot(index: UInt64)
    }

    var match: UInt64 = 0
    var next: UInt64
    var state: State = .probe
    /// In probe state, whether an append is outstanding (pause until answered).
    var probeSent = false
    /// Whether the follower answered since the last check-quorum round.
    var recentActive = false
    /// Ticks spent in the snapshot state; after an election timeout the
    /// snapshot is presumed lost and probing resumes.
    var snapshotTicks = 0
    var inflights: Inflights

    init(next: UInt64, maxInflightMessages: Int) {
        self.next = next
        inflights = Inflights(capacity: maxInflightMessages)
    }

    var isPaused: Bool {
        switch state {
        case .probe: return probeSent
        case .replicate: return inflights.isFull
        case .snapshot: return true
        }
    }

    mutating func becomeProbe() {
        if case .snapshot(let index) = state {
            next = max(match + 1, index + 1)
        } else {
            next = match + 1
        }
        state = .probe
        probeSent = false
        inflights.reset()
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        probeSent = false
        inflights.reset()
    }

    mutating func becomeSnapshot(index: UInt64) {
        state = .snapshot(index: index)
        snapshotTicks = 0
        probeSent = false
        inflights.reset()
    }

    /// A successful append response up to `index`. Returns whether it told us
    /// anything new.
    mutating func maybeUpdate(_ index: UInt64) -> Bool {
        var updated = false
        if match < index {
            match = index
            updated = true
            probeSent = false
        }
        next = max(next, index + 1)
        return updated
    }

    /// An append at `rejected` was refused; `hint` is the highest index at
    /// which the logs may still match. Returns false for a stale rejection.
    mutating func maybeDecrease(rejected: UInt64, hint: UInt64) -> Bool {
        if state == .replicate {
            if rejected <= match { return false }
            next = match + 1
            return true
        }
        if next - 1 != rejected { return false }
        // Never below match + 1: the follower already holds everything up to match.
        next = max(min(rejected, hint + 1), match + 1)
        probeSent = false
        return true
    }

    /// Records an append that ends at `lastIndex` as sent.
    mutating func sentEntries(lastIndex: UInt64, count: Int) {
        switch state {
        case .replicate:
            if count > 0 {
                next = lastIndex + 1
                inflights.add(lastIndex)
            }
        case .probe:
            probeSent = true
        case .snapshot:
            break
        }
    }
}

/// A ring of the last indexes of append messages in flight to one follower.
struct Inflights {
    private var buffer: [UInt64]
    private var start = 0
    private(set) var count = 0

    init(capacity: Int) {
        buffer = Array(repeating: 0, count: max(capacity, 1))
    }

    var isFull: Bool { count == buffer.count }

    mutating func add(_ index: UInt64) {
        precondition(!isFull, "in-flight window overflow")
        buffer[(start + count) % buffer.count] = index
        count += 1
    }

    /// Frees every message acknowledged by an answer up to `index`.
    mutating func free(through index: UInt64) {
        while count > 0 && buffer[start] <= index {
            start = (start + 1) % buffer.count
            count -= 1
        }
    }

    mutating func freeFirst() {
        guard count > 0 else { return }
        start = (start + 1) % buffer.count
        count -= 1
    }

    mutating func reset() {
        start = 0
        count = 0
    }
}

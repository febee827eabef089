/// Decides whether a history of put/get operations on per-key registers is
/// linearizable (Herlihy & Wing), with the Wing–Gong search as Porcupine
/// implements it: the history is split by key (linearizability is local, so
/// each register is checked on its own), then a depth-first search tries to
/// linearize a pending call that the register's state allows, memoizing
/// (set of linearized operations, state) so no configuration is explored
/// twice, and backtracks when it meets the return of an operation it has not
/// linearized.
///
/// An operation with an unknown outcome (`returnTime == nil`) returns at
/// infinity: it may be linearized anywhere after its invocation, and placing
/// it after everything else is the same as its never taking effect.
public struct LinearizabilityChecker: Sendable {
    public enum Outcome: Sendable, Equatable {
        case linearizable
        /// No order explains what clients saw on `key`.
        case notLinearizable(key: UInt64, operations: [ClientOperation])
        /// The search budget ran out on `key`; nothing was proven either way.
        case unknown(key: UInt64)
    }

    /// Search steps allowed per key before giving up with `.unknown`.
    public var maxSearchStepsPerKey: Int

    public init(maxSearchStepsPerKey: Int = 2_000_000) {
        self.maxSearchStepsPerKey = maxSearchStepsPerKey
    }

    public func check(_ history: [ClientOperation]) -> Outcome {
        var keys: [UInt64] = []
        var byKey: [UInt64: [ClientOperation]] = [:]
        for operation in history {
            if byKey[operation.key] == nil { keys.append(operation.key) }
            byKey[operation.key, default: []].append(operation)
        }
        var unknownKey: UInt64?
        for key in keys.sorted() {
            let operations = byKey[key]!
            switch checkRegister(operations) {
            case true?: continue
            case false?: return .notLinearizable(key: key, operations: operations)
            case nil: if unknownKey == nil { unknownKey = key }
            }
        }
        if let key = unknownKey { return .unknown(key: key) }
        return .linearizable
    }

    private struct CacheKey: Hashable {
        var linearized: [UInt64]
        var state: UInt64
    }

    /// True: linearizable; false: not; nil: budget exhausted.
    private func checkRegister(_ operations: [ClientOperation]) -> Bool? {
        let count = operations.count
        if count == 0 { return true }
        // Entries 0..<2n: call of op i is 2i, return is 2i+1. Sorted by time,
        // calls before returns at equal times (equal times count as concurrent).
        var order = Array(0..<(2 * count))
        func time(_ entry: Int) -> UInt64 {
            let operation = operations[entry / 2]
            return entry % 2 == 0 ? operation.invokeTime : (operation.returnTime ?? UInt64.max)
        }
        order.sort { lhs, rhs in
            let (lt, rt) = (time(lhs), time(rhs))
            if lt != rt { return lt < rt }
            if lhs % 2 != rhs % 2 { return lhs % 2 == 0 }
            return lhs < rhs
        }
        // A doubly linked list over entries with a head sentinel (index 2n)
        // and a tail sentinel (2n+1), so lifting and unlifting an operation
        // are O(1) "dancing links" updates undone in LIFO order.
        let head = 2 * count
        let tail = head + 1
        var next = [Int](repeating: 0, count: 2 * count + 2)
        var previous = [Int](repeating: 0, count: 2 * count + 2)
        var cursor = head
        for entry in order {
            next[cursor] = entry
            previous[entry] = cursor
            cursor = entry
        }
        next[cursor] = tail
        previous[tail] = cursor

        func remove(_ entry: Int) {
            next[previous[entry]] = next[entry]
            previous[next[entry]] = previous[entry]
        }
        func reinsert(_ entry: Int) {
            next[previous[entry]] = entry
            previous[next[entry]] = entry
        }

        var linearized = [UInt64](repeating: 0, count: (count + 63) / 64)
        var cache = Set<CacheKey>()
        var stack: [(operation: Int, state: UInt64)] = []
        var state: UInt64 = 0
        var entry = next[head]
        var steps = 0
        while next[head] != tail {
            steps += 1
            if steps > maxSearchStepsPerKey { return nil }
            if entry % 2 == 0 {
                let index = entry / 2
                let operation = operations[index]
                let allowed: Bool
                let newState: UInt64
                switch operation.kind {
                case .put: (allowed, newState) = (true, operation.value)
                case .get: (allowed, newState) = (operation.value == state, state)
                }
                if allowed {
                    linearized[index / 64] |= 1 << UInt64(index % 64)
                    if cache.insert(CacheKey(linearized: linearized, state: newState)).inserted {
                        stack.append((index, state))
                        state = newState
                        remove(2 * index)
                        remove(2 * index + 1)
                        entry = next[head]
                        continue
                    }
                    linearized[index / 64] &= ~(1 << UInt64(index % 64))
                }
                entry = next[entry]
            } else {
                // The return of an operation not yet linearized: undo the
                // most recent choice and try the next candidate after it.
                guard let top = stack.popLast() else { return false }
                state = top.state
                linearized[top.operation / 64] &= ~(1 << UInt64(top.operation % 64))
                reinsert(2 * top.operation + 1)
                reinsert(2 * top.operation)
                entry = next[2 * top.operation]
            }
        }
        return true
    }
}

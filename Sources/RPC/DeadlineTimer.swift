import Foundation

/// Fires a callback for each registered id whose deadline passed, with one
/// sleeping task per timer (not one per call).
///
/// The sleeper sleeps until the earliest deadline it knows of; registering an
/// earlier one restarts it. Calls that finish just unregister (a dictionary
/// removal), so the common case of a call answered before its deadline costs
/// no task and no wake-up. Expiry is checked against `ContinuousClock`.
final class DeadlineTimer: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var deadlines: [UInt64: ContinuousClock.Instant] = [:]
    private var sleeper: Task<Void, Never>?
    private var sleeperTarget: ContinuousClock.Instant?
    private var isStopped = false
    private let onExpire: @Sendable (UInt64) -> Void

    /// `onExpire` runs on the sleeper task, outside the timer's lock.
    init(onExpire: @escaping @Sendable (UInt64) -> Void) {
        self.onExpire = onExpire
    }

    func schedule(_ id: UInt64, at deadline: ContinuousClock.Instant) {
        lock.withLock {
            guard !isStopped else { return }
            deadlines[id] = deadline
            if let target = sleeperTarget, target <= deadline { return }
            startSleeperLocked(until: deadline)
        }
    }

    func cancel(_ id: UInt64) {
        lock.withLock { _ = deadlines.removeValue(forKey: id) }
    }

    /// Forgets every deadline and stops the sleeper.
    func stop() {
        lock.withLock {
            isStopped = true
            deadlines.removeAll()
            sleeper?.cancel()
            sleeper = nil
            sleeperTarget = nil
        }
    }

    private func startSleeperLocked(until target: ContinuousClock.Instant) {
        sleeper?.cancel()
        sleeperTarget = target
        sleeper = Task { [weak self] in
            do {
                try await Task.sleep(until: target, clock: .continuous)
            } catch {
                return // replaced by an earlier deadline, or stopped
            }
            self?.fire(target: target)
        }
    }

    private func fire(target: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        let expired: [UInt64] = lock.withLock {
            // A newer sleeper owns the timer now; let it do the work.
            guard sleeperTarget == target, !isStopped else { return [] }
            sleeper = nil
            sleeperTarget = nil
            var expired: [UInt64] = []
            var next: ContinuousClock.Instant?
            for (id, deadline) in deadlines {
                if deadline <= now {
                    expired.append(id)
                } else if next == nil || deadline < next! {
                    next = deadline
                }
            }
            for id in expired { deadlines.removeValue(forKey: id) }
            if let next { startSleeperLocked(until: next) }
            return expired
        }
        for id in expired.sorted() { onExpire(id) }
    }
}

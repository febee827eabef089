import Foundation

/// Work the runtime finishes after it has answered: a stopped container's
/// veth going away, a deleted container's lease and files. One thread runs
/// the jobs in the order they were queued, so a container's lease is only
/// released after its veth is gone, and its files after that.
///
/// Nothing here needs the queue to outlive the process: every job is also
/// written down where a restarted runtime finds it (the `removing/`
/// directory, an exited container's state still naming its veth), and
/// ``stop()`` drops what is left for that runtime to finish.
final class CleanupQueue: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs: [@Sendable () -> Void] = []
    private var running = false
    private var stopped = false
    private var thread: Thread?
    private let name: String

    init(name: String) {
        self.name = name
    }

    /// Queues `job` after every job queued before it. Dropped once stopped.
    func enqueue(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { return }
        jobs.append(job)
        if thread == nil {
            let thread = Thread { [self] in runJobs() }
            thread.name = name
            self.thread = thread
            thread.start()
        }
        condition.broadcast()
    }

    /// Queues `job` once `delay` has passed (a retry of something the kernel
    /// is not done with). Until then it is not queued: ``drain()`` does not
    /// wait for it, and after ``stop()`` it is dropped.
    func enqueue(after delay: Duration, _ job: @escaping @Sendable () -> Void) {
        let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [self] in enqueue(job) }
    }

    /// Blocks until every job queued so far has run (or the queue stopped).
    func drain() {
        condition.lock()
        defer { condition.unlock() }
        while !stopped && (running || !jobs.isEmpty) { condition.wait() }
    }

    /// Whether ``stop()`` was called: a long job checks it and gives up
    /// (leaving what it did not do for the next runtime).
    var isStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    /// Lets the running job finish and drops the rest; later jobs are dropped.
    func stop() {
        condition.lock()
        stopped = true
        jobs.removeAll()
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }

    private func runJobs() {
        condition.lock()
        while true {
            while jobs.isEmpty && !stopped { condition.wait() }
            if stopped { break }
            let job = jobs.removeFirst()
            running = true
            condition.unlock()
            job()
            condition.lock()
            running = false
            condition.broadcast()
        }
        thread = nil
        condition.unlock()
    }
}

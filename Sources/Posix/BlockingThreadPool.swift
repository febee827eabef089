#if canImport(Glibc)
import Glibc
#endif

/// Threads for work that blocks (system calls that wait, a container's
/// whole life for its monitor), kept for the next job once done: every
/// container run used to start five or so threads of its own (Foundation's
/// Thread: a stack mapped and unmapped, an NSThread object), tens of
/// microseconds each on the critical path of `container run`.
///
/// Never makes a job wait for another: a job is given a new thread unless
/// enough idle ones are there for every job not yet picked up, so jobs that
/// wait on each other cannot deadlock. Up to `idleLimit` threads wait for
/// work; the rest end.
public final class BlockingThreadPool: @unchecked Sendable {
    public static let shared = BlockingThreadPool(idleLimit: 16)

    private let idleLimit: Int
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    /// Threads waiting on `condition` (a woken one counts until it runs again).
    private var idle = 0
    private var threads = 0
    private var started = 0

    public init(idleLimit: Int) {
        self.idleLimit = idleLimit
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    /// The number of threads the pool has now (busy and idle).
    public var threadCount: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return threads
    }

    /// How many threads the pool has started in all.
    public var threadsStarted: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return started
    }

    /// Runs `job` on one of the pool's threads, at once.
    public func run(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(&mutex)
        jobs.append(job)
        // A woken thread stays counted idle until it runs: this may start a
        // thread more than needed, never one less.
        let startThread = jobs.count - head > idle
        if startThread {
            threads += 1
            started += 1
        }
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
        if startThread && !spawn() {
            // No thread to be had (the process's limit): run it here rather than never.
            pthread_mutex_lock(&mutex)
            threads -= 1
            let waiting = head < jobs.count
            let next = waiting ? take() : nil
            pthread_mutex_unlock(&mutex)
            next?()
        }
    }

    private func spawn() -> Bool {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&thread, nil, { raw in
            let pool = Unmanaged<BlockingThreadPool>.fromOpaque(raw!).takeRetainedValue()
            pool.work()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<BlockingThreadPool>.fromOpaque(context).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    /// Must hold `mutex`, with a job waiting.
    private func take() -> @Sendable () -> Void {
        let job = jobs[head]
        head += 1
        if head == jobs.count {
            jobs.removeAll(keepingCapacity: true)
            head = 0
        }
        return job
    }

    private func work() {
        pthread_mutex_lock(&mutex)
        while true {
            if head < jobs.count {
                let job = take()
                pthread_mutex_unlock(&mutex)
                job()
                pthread_mutex_lock(&mutex)
                continue
            }
            if idle >= idleLimit { break }
            idle += 1
            pthread_cond_wait(&condition, &mutex)
            idle -= 1
        }
        threads -= 1
        pthread_mutex_unlock(&mutex)
    }
}

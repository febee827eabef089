import Posix
import Foundation
import CNetLinux
#if canImport(Glibc)
import Glibc
#endif

/// One epoll instance and the one thread that waits on it.
///
/// Sockets register here (edge-triggered, for both directions, once); the loop
/// thread only records readiness and resumes the tasks that wait for it, fires
/// deadlines and runs submitted closures. The I/O itself (read, send, TLS) runs
/// on the awaiting task, so a few loop threads serve thousands of connections.
///
/// The loop holds its handlers weakly: a connection that nobody references
/// closes itself in `deinit` and the loop forgets it.
///
/// It is also a `TaskExecutor`: a task started with this loop as its
/// executor preference runs on the loop thread, so the readiness that
/// resumes it and the I/O it then does stay on one thread, with no hop to
/// the cooperative pool and back per wakeup (what a bulk transfer, one
/// connection per loop, wants). Such a task must not block the thread.
public final class EventLoop: TaskExecutor, @unchecked Sendable {
    /// Most events taken from one `epoll_wait`.
    static let maxEventsPerWait = 512

    private let epollDescriptor: Int32
    private let wakeDescriptor: Int32
    private let lock = NSLock()
    // Guarded by `lock`.
    private var handlers: [UInt64: WeakHandler] = [:]
    private var nextRegistrationID: UInt64 = 1 // 0 is the wake eventfd
    private var timers = TimerHeap()
    private var liveTimers: [UInt64: @Sendable () -> Void] = [:]
    private var nextTimerID: UInt64 = 1
    private var submitted: [@Sendable () -> Void] = []
    private var jobs: [UnownedJob] = []
    private var running = true
    private var loopThread: pthread_t?
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    private struct WeakHandler {
        weak var handler: (any EventHandler)?
    }

    /// Creates the epoll instance and starts the loop thread.
    public init(name: String = "shoal-net-loop") throws(SystemError) {
        epollDescriptor = try Syscall.run("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        do {
            wakeDescriptor = try Syscall.run("eventfd") { eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK)) }
        } catch {
            Syscall.close(epollDescriptor)
            throw error
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = 0
        try Syscall.run("epoll_ctl") { epoll_ctl(epollDescriptor, EPOLL_CTL_ADD, wakeDescriptor, &event) }
        // The thread keeps the loop alive until `shutdown()`.
        let thread = Thread {
            // Named so that /proc/<pid>/task/*/comm and debuggers show the loops
            // (Linux keeps 15 bytes). A libc call, not a syscall that can fail with EINTR.
            _ = pthread_setname_np(pthread_self(), String(name.utf8.prefix(15))!)
            self.run()
        }
        thread.name = name
        self.thread = thread
        thread.start()
    }

    deinit {
        Syscall.close(wakeDescriptor)
        Syscall.close(epollDescriptor)
    }

    // MARK: Registration

    /// Registers `descriptor` for edge-triggered readiness in both directions.
    /// Returns the registration id to pass to ``deregister(_:id:)``.
    func register(_ descriptor: Int32, handler: any EventHandler) throws(SystemError) -> UInt64 {
        let id: UInt64 = lock.withLock {
            let id = nextRegistrationID
            nextRegistrationID += 1
            handlers[id] = WeakHandler(handler: handler)
            return id
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
        event.data.u64 = id
        do {
            try Syscall.run("epoll_ctl") { epoll_ctl(epollDescriptor, EPOLL_CTL_ADD, descriptor, &event) }
        } catch {
            _ = lock.withLock { handlers.removeValue(forKey: id) }
            throw error
        }
        return id
    }

    /// Forgets a registration. Call before closing the descriptor; events already
    /// taken from epoll for this id are dropped because the id is never reused.
    func deregister(_ descriptor: Int32, id: UInt64) {
        _ = lock.withLock { handlers.removeValue(forKey: id) }
        var event = epoll_event()
        // Fails only if the descriptor is already gone, which is what we want.
        _ = try? Syscall.run("epoll_ctl") { epoll_ctl(epollDescriptor, EPOLL_CTL_DEL, descriptor, &event) }
    }

    /// Number of live registrations (for tests and metrics).
    public var registrationCount: Int { lock.withLock { handlers.count } }

    // MARK: Timers and tasks

    /// Runs `body` on the loop thread at `deadline` unless cancelled first.
    func schedule(at deadline: ContinuousClock.Instant, _ body: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, wake): (UInt64, Bool) = lock.withLock {
            let id = nextTimerID
            nextTimerID += 1
            liveTimers[id] = body
            let wake = timers.earliest.map { deadline < $0.deadline } ?? true
            timers.insert(.init(deadline: deadline, id: id))
            return (id, wake)
        }
        if wake { wakeUp() }
        return id
    }

    /// Cancels a timer; a no-op if it already fired.
    func cancelTimer(_ id: UInt64) {
        _ = lock.withLock { liveTimers.removeValue(forKey: id) }
    }

    /// Runs `body` on the loop thread soon.
    public func execute(_ body: @escaping @Sendable () -> Void) {
        lock.withLock { submitted.append(body) }
        wakeUp()
    }

    /// Runs a job of a task that prefers this loop (see the type's notes).
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let onLoopThread: Bool = lock.withLock {
            jobs.append(job)
            return loopThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
        }
        // The loop runs queued jobs before it waits again: no need to wake it
        // from its own thread (a resumption from an event handler, usually).
        if !onLoopThread { wakeUp() }
    }

    /// Stops the loop thread and waits for it to exit. Registered handlers are
    /// not told; close connections first, and let tasks that prefer this loop
    /// finish (their queued jobs would never run).
    public func shutdown() {
        let wasRunning = lock.withLock {
            let was = running
            running = false
            return was
        }
        guard wasRunning else { return }
        wakeUp()
        stopped.wait()
    }

    private func wakeUp() {
        var one: UInt64 = 1
        // EAGAIN means the counter is already non-zero: the loop will wake anyway.
        _ = try? Syscall.run("write", wouldBlock: true) { write(wakeDescriptor, &one, 8) }
    }

    // MARK: The loop

    private func run() {
        lock.withLock { loopThread = pthread_self() }
        var events = [epoll_event](repeating: epoll_event(), count: Self.maxEventsPerWait)
        while true {
            let timeout: Int32 = lock.withLock {
                guard running else { return -2 }
                if !submitted.isEmpty || !jobs.isEmpty { return 0 }
                guard let earliest = timers.earliest else { return -1 }
                let remaining = ContinuousClock.now.duration(to: earliest.deadline)
                if remaining <= .zero { return 0 }
                // Round up so we never wake just before the deadline and spin.
                let (seconds, attoseconds) = remaining.components
                let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
                return Int32(clamping: milliseconds)
            }
            if timeout == -2 { break }
            let count: Int32
            do {
                count = try events.withUnsafeMutableBufferPointer { buffer throws(SystemError) in
                    try Syscall.run("epoll_wait") {
                        epoll_wait(epollDescriptor, buffer.baseAddress, Int32(buffer.count), timeout)
                    }
                }
            } catch {
                preconditionFailure("epoll_wait on a valid epoll descriptor failed: \(error)")
            }
            for index in 0..<Int(count) {
                let id = events[index].data.u64
                let mask = events[index].events
                if id == 0 {
                    var value: UInt64 = 0
                    _ = try? Syscall.run("read", wouldBlock: true) { read(wakeDescriptor, &value, 8) }
                    continue
                }
                let handler = lock.withLock { handlers[id]?.handler }
                handler?.handleEvents(mask)
            }
            runExpiredTimers()
            let (work, ready): ([@Sendable () -> Void], [UnownedJob]) = lock.withLock {
                defer {
                    submitted.removeAll()
                    jobs.removeAll()
                }
                return (submitted, jobs)
            }
            for body in work { body() }
            for job in ready { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
        stopped.signal()
    }

    private func runExpiredTimers() {
        let now = ContinuousClock.now
        let due: [@Sendable () -> Void] = lock.withLock {
            var due: [@Sendable () -> Void] = []
            while let earliest = timers.earliest, earliest.deadline <= now {
                _ = timers.popEarliest()
                if let body = liveTimers.removeValue(forKey: earliest.id) { due.append(body) }
            }
            return due
        }
        for body in due { body() }
    }
}

import Foundation

/// Readiness of one direction of one descriptor, and the one task waiting for it.
///
/// Registration is edge-triggered, so readiness is a counter of edges rather
/// than a flag: a task notes the counter, tries its syscall, and if that says
/// `EAGAIN` waits until the counter moves past the value it noted. An edge that
/// arrives between the syscall and the wait is therefore never lost.
///
/// At most one task waits at a time (one reader, one acceptor, one connector);
/// a second concurrent waiter is a programmer error.
final class Readiness: @unchecked Sendable {
    private let loop: EventLoop
    private let lock = NSLock()
    // Guarded by `lock`.
    private var edges: UInt64 = 0
    private var waiter: Waiter?
    private var nextToken: UInt64 = 1
    private var failure: (any Error)?

    private struct Waiter {
        let token: UInt64
        let continuation: CheckedContinuation<Void, any Error>
        let timer: UInt64?
    }

    init(loop: EventLoop) {
        self.loop = loop
    }

    /// The current edge count; pass it to ``wait(since:deadline:timeout:)``.
    var edgeCount: UInt64 { lock.withLock { edges } }

    /// Whether a task is waiting now.
    var hasWaiter: Bool { lock.withLock { waiter != nil } }

    /// Records an edge and wakes the waiter. Called on the loop thread.
    func signal() {
        let woken: Waiter? = lock.withLock {
            edges &+= 1
            defer { waiter = nil }
            return waiter
        }
        if let woken { finish(woken, with: .success(())) }
    }

    /// Fails the current and every later wait with `error` (the descriptor closed).
    func fail(_ error: any Error) {
        let woken: Waiter? = lock.withLock {
            if failure == nil { failure = error }
            defer { waiter = nil }
            return waiter
        }
        if let woken { finish(woken, with: .failure(error)) }
    }

    /// Suspends until an edge newer than `seen` arrives.
    ///
    /// Throws `timeout()` at `deadline` and `CancellationError` when the task is
    /// cancelled; neither changes the descriptor, so the caller decides whether
    /// the connection survives (a read does, a connect does not).
    func wait(
        since seen: UInt64,
        deadline: ContinuousClock.Instant?,
        timeout: @escaping @Sendable () -> any Error
    ) async throws {
        let token: UInt64 = lock.withLock {
            defer { nextToken += 1 }
            return nextToken
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                lock.lock()
                if let failure {
                    lock.unlock()
                    continuation.resume(throwing: failure)
                    return
                }
                if edges != seen {
                    lock.unlock()
                    continuation.resume()
                    return
                }
                // Checked under the lock the cancel handler takes: either it ran
                // before (and the flag is set) or it will find this waiter.
                if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(throwing: CancellationError())
                    return
                }
                precondition(waiter == nil, "two tasks wait for the same readiness; Net allows one reader/acceptor per socket")
                let timer = deadline.map { deadline in
                    loop.schedule(at: deadline) { [weak self] in self?.expire(token, with: timeout()) }
                }
                waiter = Waiter(token: token, continuation: continuation, timer: timer)
                lock.unlock()
            }
        } onCancel: {
            expire(token, with: CancellationError())
        }
    }

    private func expire(_ token: UInt64, with error: any Error) {
        let woken: Waiter? = lock.withLock {
            guard let current = waiter, current.token == token else { return nil }
            waiter = nil
            return current
        }
        if let woken { finish(woken, with: .failure(error)) }
    }

    private func finish(_ waiter: Waiter, with result: Result<Void, any Error>) {
        if let timer = waiter.timer { loop.cancelTimer(timer) }
        waiter.continuation.resume(with: result)
    }
}

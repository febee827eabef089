import Foundation

/// The client's side of one server stream: a buffer bounded by the window
/// the client advertised, the credit it owes the server, and how it ended.
final class ClientStream: @unchecked Sendable {
    let callID: UInt64
    let method: String
    let windowMessages: Int
    private let lock = NSLock()
    // Guarded by `lock`.
    private var buffer: [[UInt8]] = []
    private var head = 0
    /// Messages the server may still send before it needs more credit.
    private var allowanceMessages: Int
    private var consumedSinceCredit = 0
    /// The end the server sent: delivered after the buffered messages.
    private var ending: RPCStatus?
    /// A local failure (deadline, cancellation, closed connection): thrown at once.
    private var failure: RPCError?
    private var waiter: CheckedContinuation<[UInt8]?, any Error>?
    private var peakBuffered = 0

    init(callID: UInt64, method: String, windowMessages: Int) {
        self.callID = callID
        self.method = method
        self.windowMessages = windowMessages
        self.allowanceMessages = windowMessages
    }

    /// The most messages ever buffered at once (never above the window).
    var peakBufferedMessages: Int { lock.withLock { peakBuffered } }

    /// A message arrived. Returns false when the server sent more than its
    /// credit allowed: a protocol violation.
    func deliver(_ payload: [UInt8]) -> Bool {
        lock.lock()
        guard ending == nil, failure == nil else {
            lock.unlock()
            return true // late message after a local failure: drop it
        }
        guard allowanceMessages > 0 else {
            lock.unlock()
            return false
        }
        allowanceMessages -= 1
        if let waiter {
            self.waiter = nil
            consumedSinceCredit += 1
            lock.unlock()
            waiter.resume(returning: payload)
            return true
        }
        buffer.append(payload)
        peakBuffered = max(peakBuffered, buffer.count - head)
        lock.unlock()
        return true
    }

    /// The server ended the stream with `status`.
    func finish(_ status: RPCStatus) {
        let waiter: CheckedContinuation<[UInt8]?, any Error>? = lock.withLock {
            guard ending == nil, failure == nil else { return nil }
            ending = status
            guard head == buffer.count else { return nil } // buffered messages first
            defer { self.waiter = nil }
            return self.waiter
        }
        guard let waiter else { return }
        if status.code == .ok {
            waiter.resume(returning: nil)
        } else {
            waiter.resume(throwing: status.error(method: method))
        }
    }

    /// The call failed locally: the consumer gets `error` now, buffered
    /// messages are dropped.
    func fail(_ error: RPCError) {
        let waiter: CheckedContinuation<[UInt8]?, any Error>? = lock.withLock {
            guard failure == nil else { return nil }
            failure = error
            buffer = []
            head = 0
            defer { self.waiter = nil }
            return self.waiter
        }
        waiter?.resume(throwing: error)
    }

    /// Whether the stream has ended (either way) and nothing is left to read.
    var isDone: Bool { lock.withLock { failure != nil || (ending != nil && head == buffer.count) } }

    /// The next message; nil at a clean end.
    func next() async throws -> [UInt8]? {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8]?, any Error>) in
            lock.lock()
            if let failure {
                lock.unlock()
                continuation.resume(throwing: failure)
                return
            }
            if head < buffer.count {
                let payload = buffer[head]
                head += 1
                if head == buffer.count {
                    buffer.removeAll(keepingCapacity: true)
                    head = 0
                } else if head >= 64 && head * 2 >= buffer.count {
                    buffer.removeFirst(head)
                    head = 0
                }
                consumedSinceCredit += 1
                lock.unlock()
                continuation.resume(returning: payload)
                return
            }
            if let ending {
                lock.unlock()
                if ending.code == .ok {
                    continuation.resume(returning: nil)
                } else {
                    continuation.resume(throwing: ending.error(method: method))
                }
                return
            }
            precondition(waiter == nil, "two tasks iterate the stream of \(method) call \(callID) at once")
            waiter = continuation
            lock.unlock()
        }
    }

    /// Credit to grant now, if the consumer has taken half a window since
    /// the last grant (batching keeps credit frames rare); 0 otherwise.
    func takeCreditToGrant() -> UInt32 {
        lock.withLock {
            guard ending == nil, failure == nil, consumedSinceCredit >= max(1, windowMessages / 2) else { return 0 }
            let grant = consumedSinceCredit
            consumedSinceCredit = 0
            allowanceMessages += grant
            return UInt32(grant)
        }
    }
}

import Foundation

/// The sending side of one server stream, handed to a stream handler.
///
/// `send` waits while the client's window is used up (the client has not
/// consumed what it was sent) and while the connection's outbound queue is
/// full: a slow consumer makes its handler wait, it never grows a buffer.
public final class RPCStreamWriter: @unchecked Sendable {
    private let callID: UInt64
    private let method: String
    private let outbound: OutboundFrames
    private let lock = NSLock()
    // Guarded by `lock`.
    private var creditMessages: Int
    private var creditWaiter: CheckedContinuation<Void, any Error>?
    private var failure: (any Error)?
    private var sentMessages = 0

    init(callID: UInt64, method: String, windowMessages: Int, outbound: OutboundFrames) {
        self.callID = callID
        self.method = method
        self.creditMessages = windowMessages
        self.outbound = outbound
    }

    /// Messages sent so far.
    public var sentCount: Int { lock.withLock { sentMessages } }

    /// Sends one message, waiting for the client's credit first.
    ///
    /// - Throws: `CancellationError` when the call was cancelled (deadline,
    ///   client cancellation, closed connection): the handler should return;
    ///   `RPCError` (`resourceExhausted`) for a payload over the frame limit.
    public func send(_ payload: [UInt8]) async throws {
        let limit = outbound.maxFrameBytes - RPCFrame.maxOverheadBytes
        guard payload.count <= limit else {
            throw RPCError.payloadTooLarge(method: method, bytes: payload.count, maxBytes: limit)
        }
        try await takeCredit()
        try await outbound.sendWhenRoom(RPCFrame(callID: callID, .message(payload: payload)))
    }

    private func takeCredit() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                lock.lock()
                if let failure {
                    lock.unlock()
                    continuation.resume(throwing: failure)
                } else if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(throwing: CancellationError())
                } else if creditMessages > 0 {
                    creditMessages -= 1
                    sentMessages += 1
                    lock.unlock()
                    continuation.resume()
                } else {
                    precondition(creditWaiter == nil, "two tasks called send on the stream of \(method) call \(callID) at once")
                    creditWaiter = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            fail(CancellationError())
        }
    }

    /// The client consumed `messages` more: lets the handler send that many.
    func grant(_ messages: UInt32) {
        let waiter: CheckedContinuation<Void, any Error>? = lock.withLock {
            creditMessages += Int(messages)
            guard creditMessages > 0, let waiter = creditWaiter else { return nil }
            creditWaiter = nil
            creditMessages -= 1
            sentMessages += 1
            return waiter
        }
        waiter?.resume()
    }

    /// The call ended (cancelled, deadline, connection gone): fails the
    /// waiting and every later `send`.
    func fail(_ error: any Error) {
        let waiter: CheckedContinuation<Void, any Error>? = lock.withLock {
            if failure == nil { failure = error }
            defer { creditWaiter = nil }
            return creditWaiter
        }
        waiter?.resume(throwing: error)
    }
}

import Foundation
import Wire

/// The sending half of an RPC connection: frames from any task are encoded
/// into one buffer that a single writer task hands to the transport, so
/// concurrent calls never interleave bytes and many small frames leave in
/// one write.
///
/// Small control frames (requests, cancels, credits) are queued at once with
/// `send(_:)`; answers and stream messages use `sendWhenRoom(_:)`, which
/// waits while more than `RPCLimits.outboundHighWaterBytes` are queued, so a
/// peer that reads slowly slows its senders down instead of growing memory.
final class OutboundFrames: @unchecked Sendable {
    private let transport: any RPCTransport
    let maxFrameBytes: Int
    private let highWaterBytes: Int
    private let onFailure: @Sendable (any Error) -> Void
    private let lock = NSLock()
    // Guarded by `lock`.
    private var pending: [UInt8] = []
    private var writerWaiter: CheckedContinuation<Void, Never>?
    private var roomWaiters: [(token: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextToken: UInt64 = 0
    private var failure: RPCError?
    private var isFinishing = false
    private var writer: Task<Void, Never>?

    /// `onFailure` is called once if writing to the transport fails.
    init(transport: any RPCTransport, maxFrameBytes: Int, highWaterBytes: Int = RPCLimits.outboundHighWaterBytes,
         onFailure: @escaping @Sendable (any Error) -> Void) {
        self.transport = transport
        self.maxFrameBytes = maxFrameBytes
        self.highWaterBytes = highWaterBytes
        self.onFailure = onFailure
        lock.withLock {
            writer = Task { [self] in await self.runWriter() }
        }
    }

    /// Queues `frame` now. Throws if the connection failed or is closing, or
    /// the frame exceeds the frame limit (nothing is queued then).
    func send(_ frame: RPCFrame) throws(RPCError) {
        let bytes = try encode(frame)
        lock.lock()
        if let failure {
            lock.unlock()
            throw failure
        }
        guard !isFinishing else {
            lock.unlock()
            throw RPCError.connectionClosed(method: "", reason: "the connection is closing")
        }
        pending.append(contentsOf: bytes)
        let writer = writerWaiter
        writerWaiter = nil
        lock.unlock()
        writer?.resume()
    }

    /// Waits until the queue is below its high-water mark, then queues `frame`.
    func sendWhenRoom(_ frame: RPCFrame) async throws {
        try await waitForRoom()
        try send(frame)
    }

    /// Waits until the queue is below its high-water mark (or throws the
    /// connection's failure, or `CancellationError`).
    func waitForRoom() async throws {
        let token: UInt64 = lock.withLock { nextToken += 1; return nextToken }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                lock.lock()
                if let failure {
                    lock.unlock()
                    continuation.resume(throwing: failure)
                } else if pending.count < highWaterBytes || isFinishing {
                    lock.unlock()
                    continuation.resume()
                } else if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(throwing: CancellationError())
                } else {
                    roomWaiters.append((token, continuation))
                    lock.unlock()
                }
            }
        } onCancel: {
            let waiter: CheckedContinuation<Void, any Error>? = lock.withLock {
                guard let index = roomWaiters.firstIndex(where: { $0.token == token }) else { return nil }
                return roomWaiters.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Stops accepting frames, lets the writer send what is queued, and waits
    /// for it to finish. Does not close the transport.
    func finish() async {
        let (task, waiter): (Task<Void, Never>?, CheckedContinuation<Void, Never>?) = lock.withLock {
            isFinishing = true
            defer { writerWaiter = nil }
            return (writer, writerWaiter)
        }
        waiter?.resume()
        await task?.value
    }

    /// Fails every sender from now on with `error` (the connection is gone).
    func fail(_ error: RPCError) {
        let (waiters, writer): ([CheckedContinuation<Void, any Error>], CheckedContinuation<Void, Never>?) = lock.withLock {
            if failure == nil { failure = error }
            pending = []
            isFinishing = true
            defer { roomWaiters = []; writerWaiter = nil }
            return (roomWaiters.map(\.continuation), writerWaiter)
        }
        for waiter in waiters { waiter.resume(throwing: error) }
        writer?.resume()
    }

    private func encode(_ frame: RPCFrame) throws(RPCError) -> [UInt8] {
        var writer = WireWriter(reservingCapacity: 64)
        writer.writeMessage(frame)
        let message = writer.bytes
        guard message.count <= maxFrameBytes else {
            throw RPCError(.resourceExhausted, message: "a frame of \(message.count) bytes exceeds the limit of \(maxFrameBytes) bytes",
                           hint: "split the payload or raise maxFrameBytes on both ends")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(WireLimits.frameHeaderBytes + message.count)
        let length = UInt32(message.count)
        bytes.append(UInt8(truncatingIfNeeded: length >> 24))
        bytes.append(UInt8(truncatingIfNeeded: length >> 16))
        bytes.append(UInt8(truncatingIfNeeded: length >> 8))
        bytes.append(UInt8(truncatingIfNeeded: length))
        bytes.append(contentsOf: message)
        return bytes
    }

    /// The writer task: takes everything queued, writes it, repeats; ends
    /// once finishing and empty, or on a transport error.
    private func runWriter() async {
        while true {
            await waitForWork()
            let (batch, waiters, done): ([UInt8], [CheckedContinuation<Void, any Error>], Bool) = lock.withLock {
                if failure != nil || (pending.isEmpty && isFinishing) { return ([], [], true) }
                let batch = pending
                pending = []
                defer { roomWaiters = [] }
                return (batch, roomWaiters.map(\.continuation), false)
            }
            if done { return }
            for waiter in waiters { waiter.resume() }
            do {
                // No deadline: a peer that stops reading is caught by the
                // callers' deadlines, which cancel calls and close connections.
                try await transport.write(batch, deadline: nil)
            } catch {
                fail(RPCError.connectionClosed(method: "", reason: "writing to the peer failed: \(error)"))
                onFailure(error)
                return
            }
        }
    }

    /// Returns once there is something to write, or the writer must end.
    private func waitForWork() async {
        await withCheckedContinuation { (wake: CheckedContinuation<Void, Never>) in
            lock.lock()
            if !pending.isEmpty || isFinishing || failure != nil {
                lock.unlock()
                wake.resume()
            } else {
                writerWaiter = wake
                lock.unlock()
            }
        }
    }
}

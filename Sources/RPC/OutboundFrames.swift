import Foundation
import Wire

/// The sending half of an RPC connection: frames from any task are encoded
/// and written in order, never interleaving bytes.
///
/// A frame sent while nothing else is being written leaves at once from the
/// sender's thread (the Raft loop, the reader answering an inline call):
/// a hop to a writer task would cost a thread wake-up on every Raft
/// message, which is most of a commit's latency on a loaded host. Frames
/// sent meanwhile, or while the socket is backed up past its low-water
/// mark, queue into one buffer that a single writer task hands to the
/// transport, so many small frames leave in one write and a slow peer
/// makes the writer wait instead of the sender.
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
    /// A write is under way (a sender's inline write or the writer task's):
    /// frames queue behind it.
    private var writing = false
    /// An inline write left the socket's buffer above its low-water mark:
    /// frames queue for the writer task, which waits for the drain.
    private var congested = false
    /// An inline write failed: the writer task reports it (the sender may
    /// hold locks that `onFailure` takes).
    private var failureToReport: (any Error)?
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
        _ = try send(frame, onlyIfRoom: false)
    }

    /// As ``send(_:)``, unless the queue is at its high-water mark: then
    /// queues nothing and returns false (the caller waits with
    /// ``waitForRoom()`` and tries again).
    func sendIfRoom(_ frame: RPCFrame) throws(RPCError) -> Bool {
        try send(frame, onlyIfRoom: true)
    }

    private func send(_ frame: RPCFrame, onlyIfRoom: Bool) throws(RPCError) -> Bool {
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
        if onlyIfRoom && pending.count >= highWaterBytes {
            lock.unlock()
            return false
        }
        if !writing && !congested && pending.isEmpty {
            writing = true
            lock.unlock()
            try writeInline(bytes)
            return true
        }
        pending.append(contentsOf: bytes)
        let writer = writing ? nil : takeWriterWaiterLocked()
        lock.unlock()
        writer?.resume()
        return true
    }

    /// Writes `bytes` on the calling thread (`writing` is set), then hands
    /// over to the writer task whatever queued meanwhile.
    private func writeInline(_ bytes: [UInt8]) throws(RPCError) {
        let buffered: Int
        do {
            buffered = try transport.writeNow(bytes)
        } catch {
            let failure = RPCError.connectionClosed(method: "", reason: "writing to the peer failed: \(error)")
            let writer: CheckedContinuation<Void, Never>? = lock.withLock {
                writing = false
                failureToReport = error
                return takeWriterWaiterLocked()
            }
            fail(failure)
            writer?.resume()
            throw failure
        }
        let writer: CheckedContinuation<Void, Never>? = lock.withLock {
            writing = false
            if buffered > transport.lowWaterMarkBytes { congested = true }
            return pending.isEmpty && !isFinishing ? nil : takeWriterWaiterLocked()
        }
        writer?.resume()
    }

    private func takeWriterWaiterLocked() -> CheckedContinuation<Void, Never>? {
        defer { writerWaiter = nil }
        return writerWaiter
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
        frame.writeMessage(to: &writer)
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
            let (batch, waiters, done, report): ([UInt8], [CheckedContinuation<Void, any Error>], Bool, (any Error)?) = lock.withLock {
                if failure != nil {
                    defer { failureToReport = nil }
                    return ([], [], true, failureToReport)
                }
                if writing { return ([], [], false, nil) } // an inline write ends and wakes us
                if pending.isEmpty { return ([], [], isFinishing, nil) }
                let batch = pending
                pending = []
                writing = true
                defer { roomWaiters = [] }
                return (batch, roomWaiters.map(\.continuation), false, nil)
            }
            if let report { onFailure(report) }
            if done { return }
            if batch.isEmpty { continue }
            for waiter in waiters { waiter.resume() }
            do {
                // No deadline: a peer that stops reading is caught by the
                // callers' deadlines, which cancel calls and close connections.
                try await transport.write(batch, deadline: nil)
            } catch {
                lock.withLock { writing = false }
                fail(RPCError.connectionClosed(method: "", reason: "writing to the peer failed: \(error)"))
                onFailure(error)
                return
            }
            // `write` returned with the socket's buffer drained below its low-water mark.
            lock.withLock {
                writing = false
                congested = false
            }
        }
    }

    /// Returns once there is something to write, or the writer must end.
    private func waitForWork() async {
        await withCheckedContinuation { (wake: CheckedContinuation<Void, Never>) in
            lock.lock()
            if (!pending.isEmpty && !writing) || (isFinishing && !writing) || failure != nil {
                lock.unlock()
                wake.resume()
            } else {
                writerWaiter = wake
                lock.unlock()
            }
        }
    }
}

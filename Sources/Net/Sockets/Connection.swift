import Posix
import Foundation
import CNetLinux
#if canImport(Glibc)
import Glibc
#endif

/// A connected stream socket (TCP over IPv4/IPv6, or a Unix socket) with an
/// async API, driven by an ``EventLoop``.
///
/// - Reads: one reader at a time. `read` returns what is available (up to
///   `maxBytes`), or `[]` at end of stream.
/// - Writes: `write` copies into a bounded send buffer and returns once the
///   buffer is below the high-water mark, so a fast writer facing a slow
///   reader waits instead of growing memory. Concurrent writers interleave at
///   chunk boundaries; use one writer per connection.
/// - Deadlines and cancellation: a read that times out or is cancelled
///   leaves the connection usable (nothing was consumed). A write or connect
///   that times out or is cancelled aborts the connection, because the peer
///   may have received part of the data.
/// - `close` is graceful (send what is buffered, shut down our side, read to
///   the peer's end); `abort` resets at once.
public final class Connection: EventHandler, @unchecked Sendable {
    /// Send buffer size above which `write` waits.
    public static let defaultHighWaterMarkBytes = 256 * 1024
    /// `maxBytes` of `read` when the caller does not say.
    public static let defaultReadChunkBytes = 64 * 1024
    /// How long `close` may spend draining when the caller gives no deadline.
    public static let defaultCloseTimeout: Duration = .seconds(10)

    public let localAddress: SocketAddress?
    public let remoteAddress: SocketAddress?
    /// `write` returns only when fewer bytes than this are still buffered.
    public let highWaterMarkBytes: Int
    /// A waiting writer resumes once the buffer has drained to this.
    public var lowWaterMarkBytes: Int { highWaterMarkBytes / 2 }

    let loop: EventLoop
    /// The loop that reports this socket's readiness: a task that prefers it
    /// as executor reads and writes with no hop between threads per wake-up.
    public var eventLoop: EventLoop { loop }
    private let descriptor: Int32
    private let readable: Readiness
    private let writable: Readiness
    private let lock = NSLock()
    // Guarded by `lock`. Syscalls on `descriptor` run under it too, so `close`
    // can never race a read or send into a reused descriptor number.
    private var registrationID: UInt64 = 0
    private var isClosed = false
    private var isWriteShutdown = false
    private var sendBuffer: [UInt8] = []
    private var sendOffset = 0
    private var sendFailure: (any Error)?
    private var drainWaiters: [DrainWaiter] = []
    private var nextToken: UInt64 = 1
    private var peakBuffered = 0

    private struct DrainWaiter {
        let token: UInt64
        let thresholdBytes: Int
        let continuation: CheckedContinuation<Void, any Error>
        let timer: UInt64?
    }

    init(descriptor: Int32, loop: EventLoop, highWaterMarkBytes: Int, remoteAddress: SocketAddress? = nil) throws {
        precondition(highWaterMarkBytes > 0, "high-water mark must be positive, got \(highWaterMarkBytes)")
        self.descriptor = descriptor
        self.loop = loop
        self.highWaterMarkBytes = highWaterMarkBytes
        self.readable = Readiness(loop: loop)
        self.writable = Readiness(loop: loop)
        self.localAddress = SocketAddress.of(descriptor, peer: false)
        self.remoteAddress = remoteAddress ?? SocketAddress.of(descriptor, peer: true)
        do {
            registrationID = try loop.register(descriptor, handler: self)
        } catch {
            isClosed = true
            Syscall.close(descriptor)
            throw error
        }
    }

    deinit {
        if !isClosed {
            loop.deregister(descriptor, id: registrationID)
            Syscall.close(descriptor)
        }
    }

    private var peerDescription: String { remoteAddress?.description ?? "peer" }

    // MARK: Connecting

    /// Opens a connection to `address`.
    ///
    /// - Throws: ``NetError/timedOut(operation:address:)`` at `deadline`,
    ///   `SystemError` (e.g. `ECONNREFUSED`) when the peer refuses.
    public static func connect(
        to address: SocketAddress,
        deadline: ContinuousClock.Instant? = nil,
        highWaterMarkBytes: Int = defaultHighWaterMarkBytes,
        group: EventLoopGroup = .shared
    ) async throws -> Connection {
        let descriptor = try Syscall.run("socket", path: address.description) {
            socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        configureTCP(descriptor, family: address.family, peer: address)
        var inProgress = false
        do {
            while true {
                let result = try address.withSockAddr { pointer, length in
                    try Syscall.run("connect", path: address.description, wouldBlock: true) {
                        Glibc.connect(descriptor, pointer, length)
                    }
                }
                if result != nil { break }
                if address.family != AF_UNIX { inProgress = true; break }
                // A Unix socket says EAGAIN when the listener's backlog is full:
                // there is no readiness to wait for, so back off briefly.
                if let deadline, ContinuousClock.now >= deadline {
                    throw NetError.timedOut(operation: "connect", address: address.description)
                }
                try await Task.sleep(for: .milliseconds(1))
            }
        } catch {
            Syscall.close(descriptor)
            throw error
        }
        let connection = try Connection(
            descriptor: descriptor,
            loop: group.next(),
            highWaterMarkBytes: highWaterMarkBytes,
            remoteAddress: address
        )
        guard inProgress else { return connection }
        do {
            try await connection.waitUntilConnected(deadline: deadline, address: address)
        } catch {
            connection.abort()
            throw error
        }
        return connection
    }

    /// The congestion control for a peer on this machine. BBR (this host's
    /// default) paces its sends with timers and cuts them into small
    /// segments to model a bottleneck link that loopback does not have: on
    /// loopback that costs about a third more CPU per byte than CUBIC or Reno.
    static let loopbackCongestionControls = ["cubic", "reno"]

    /// TCP options of every connected socket (connected or accepted): no
    /// Nagle delay (requests and TLS records go out at once) and, for a
    /// loopback peer, a congestion control that does not pace. Options the
    /// kernel refuses are left as they are: they only cost speed.
    static func configureTCP(_ descriptor: Int32, family: Int32, peer: SocketAddress?) {
        guard family != AF_UNIX else { return }
        var one: Int32 = 1
        _ = try? Syscall.run("setsockopt(TCP_NODELAY)") {
            setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        guard peer?.isLoopback == true else { return }
        for name in loopbackCongestionControls {
            let set = try? Syscall.run("setsockopt(TCP_CONGESTION)") {
                setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_CONGESTION, name, socklen_t(name.utf8.count))
            }
            if set != nil { return }
        }
    }

    private func waitUntilConnected(deadline: ContinuousClock.Instant?, address: SocketAddress) async throws {
        while true {
            let seen = writable.edgeCount
            var code: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            try lock.withLock {
                guard !isClosed else { throw NetError.closed(operation: "connect") }
                try Syscall.run("getsockopt(SO_ERROR)") { getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &code, &length) }
            }
            if code != 0 { throw SystemError(call: "connect", errno: code, path: address.description) }
            // Connected once the peer address is known (ENOTCONN while in progress).
            let connected = lock.withLock {
                var storage = sockaddr_storage()
                var storageLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
                return withUnsafeMutablePointer(to: &storage) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &storageLength) == 0 }
                }
            }
            if connected { return }
            try await writable.wait(since: seen, deadline: deadline) {
                NetError.timedOut(operation: "connect", address: address.description)
            }
        }
    }

    // MARK: Events (loop thread)

    func handleEvents(_ events: UInt32) {
        let readMask = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue
        let writeMask = EPOLLOUT.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue
        if events & readMask != 0 { readable.signal() }
        if events & writeMask != 0 {
            writable.signal()
            let woken: [(DrainWaiter, (any Error)?)] = lock.withLock {
                guard !isClosed else { return [] }
                flushLocked()
                return takeSatisfiedDrainWaitersLocked()
            }
            for (waiter, error) in woken { finish(waiter, error) }
        }
    }

    // MARK: Reading

    /// Reads up to `maxBytes`; returns `[]` when the peer has closed its side.
    ///
    /// - Throws: ``NetError/timedOut(operation:address:)`` at `deadline` and
    ///   `CancellationError` on cancellation (the connection stays usable);
    ///   `SystemError` on reset; ``NetError/closed(operation:)`` after `close`.
    public func read(
        maxBytes: Int = defaultReadChunkBytes,
        deadline: ContinuousClock.Instant? = nil
    ) async throws -> [UInt8] {
        precondition(maxBytes > 0, "read(maxBytes:) needs a positive size, got \(maxBytes)")
        while true {
            try Task.checkCancellation()
            let seen = readable.edgeCount
            if let bytes = try readNow(maxBytes: maxBytes) { return bytes }
            try await readable.wait(since: seen, deadline: deadline) { [peerDescription] in
                NetError.timedOut(operation: "read", address: peerDescription)
            }
        }
    }

    /// One non-blocking read; nil when nothing is available yet.
    func readNow(maxBytes: Int) throws -> [UInt8]? {
        try withUnsafeTemporaryAllocation(byteCount: maxBytes, alignment: 1) { buffer in
            guard let count = try readNow(into: buffer) else { return nil }
            return Array(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }

    /// One non-blocking read into `buffer`, without an array in between (TLS
    /// reads straight into OpenSSL's buffer); nil when nothing is available
    /// yet, 0 at end of stream.
    func readNow(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        try lock.withLock {
            guard !isClosed else { throw NetError.closed(operation: "read") }
            return try Syscall.run("read", path: peerDescription, wouldBlock: true) {
                Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            }
        }
    }

    /// The read-readiness edge count: note it before a non-blocking read that
    /// may find nothing, then pass it to ``waitUntilReadable(since:deadline:)``
    /// (TLS reads the socket from inside OpenSSL, through ``ConnectionBIO``).
    var readEdgeCount: UInt64 { readable.edgeCount }

    /// Waits until the socket became readable after the edge count `seen`;
    /// throws as ``read(maxBytes:deadline:)`` does (the connection stays usable).
    func waitUntilReadable(since seen: UInt64, deadline: ContinuousClock.Instant?) async throws {
        try Task.checkCancellation()
        try await readable.wait(since: seen, deadline: deadline) { [peerDescription] in
            NetError.timedOut(operation: "read", address: peerDescription)
        }
    }

    // MARK: Writing

    /// Sends `bytes`, waiting whenever the send buffer is above the high-water
    /// mark. Returns when every byte is buffered or sent.
    ///
    /// - Throws: ``NetError/timedOut(operation:address:)`` or
    ///   `CancellationError` (the connection is then aborted: part of `bytes`
    ///   may have reached the peer); `SystemError` if the peer reset.
    public func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant? = nil) async throws {
        var start = 0
        repeat {
            try Task.checkCancellation()
            let end = min(bytes.count, start + highWaterMarkBytes)
            let buffered = try enqueue(bytes[start..<end])
            start = end
            if buffered > lowWaterMarkBytes {
                try await waitForDrain(toBytes: lowWaterMarkBytes, deadline: deadline)
            }
        } while start < bytes.count
    }

    /// Sends `bytes` now, on the calling thread, without waiting: what the
    /// kernel does not take is buffered and sent as the socket drains.
    /// Returns the bytes still buffered; above ``lowWaterMarkBytes`` the
    /// caller should let the buffer drain (``write(_:deadline:)``) before more.
    public func writeNow(_ bytes: [UInt8]) throws -> Int {
        try enqueue(bytes[...])
    }

    /// Appends to the send buffer in call order and starts sending; returns the
    /// bytes still buffered. Synchronous so that TLS records produced under
    /// the TLS lock reach the socket in the order OpenSSL produced them.
    @discardableResult
    func enqueue(_ bytes: ArraySlice<UInt8>) throws -> Int {
        try bytes.withUnsafeBytes { try enqueue($0) }
    }

    /// ``enqueue(_:)`` from memory the caller owns. With nothing buffered
    /// (the usual case) the bytes go to the kernel straight from `bytes`;
    /// only what the kernel does not take is copied into the send buffer.
    @discardableResult
    func enqueue(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        try lock.withLock {
            guard !isClosed, !isWriteShutdown else { throw NetError.closed(operation: "write") }
            if let sendFailure { throw sendFailure }
            var start = 0
            if sendOffset == sendBuffer.count {
                while start < bytes.count {
                    do {
                        let sent = try Syscall.run("send", path: peerDescription, wouldBlock: true) {
                            send(descriptor, bytes.baseAddress! + start, bytes.count - start, Int32(MSG_NOSIGNAL))
                        }
                        guard let sent else { break }
                        start += sent
                    } catch {
                        sendFailure = error
                        throw error
                    }
                }
            }
            if start < bytes.count {
                sendBuffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start...]))
                flushLocked()
            }
            if let sendFailure { throw sendFailure }
            let buffered = sendBuffer.count - sendOffset
            peakBuffered = max(peakBuffered, buffered)
            return buffered
        }
    }

    /// Bytes accepted by `write` but not yet taken by the kernel.
    public var bufferedBytes: Int { lock.withLock { sendBuffer.count - sendOffset } }
    /// The most bytes ever buffered at once: bounded by the high-water mark.
    public var peakBufferedBytes: Int { lock.withLock { peakBuffered } }

    /// Waits until at most `toBytes` are buffered. On timeout or cancellation
    /// the connection is aborted (see ``write(_:deadline:)``).
    func waitForDrain(toBytes threshold: Int, deadline: ContinuousClock.Instant?) async throws {
        let token: UInt64 = lock.withLock {
            defer { nextToken += 1 }
            return nextToken
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                lock.lock()
                if let sendFailure {
                    lock.unlock()
                    continuation.resume(throwing: sendFailure)
                    return
                }
                if isClosed {
                    lock.unlock()
                    continuation.resume(throwing: NetError.closed(operation: "write"))
                    return
                }
                if sendBuffer.count - sendOffset <= threshold {
                    lock.unlock()
                    continuation.resume()
                    return
                }
                if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(throwing: CancellationError())
                    abort()
                    return
                }
                let timer = deadline.map { deadline in
                    loop.schedule(at: deadline) { [weak self] in
                        guard let self else { return }
                        self.abortDrainWaiter(token, with: NetError.timedOut(operation: "write", address: self.peerDescription))
                    }
                }
                drainWaiters.append(DrainWaiter(token: token, thresholdBytes: threshold, continuation: continuation, timer: timer))
                lock.unlock()
            }
        } onCancel: {
            abortDrainWaiter(token, with: CancellationError())
        }
    }

    private func abortDrainWaiter(_ token: UInt64, with error: any Error) {
        let waiter: DrainWaiter? = lock.withLock {
            guard let index = drainWaiters.firstIndex(where: { $0.token == token }) else { return nil }
            return drainWaiters.remove(at: index)
        }
        guard let waiter else { return }
        finish(waiter, error)
        abort()
    }

    private func flushLocked() {
        while sendOffset < sendBuffer.count, sendFailure == nil {
            do {
                let sent = try sendBuffer.withUnsafeBytes { raw in
                    try Syscall.run("send", path: peerDescription, wouldBlock: true) {
                        send(descriptor, raw.baseAddress! + sendOffset, raw.count - sendOffset, Int32(MSG_NOSIGNAL))
                    }
                }
                guard let sent else { break }
                sendOffset += sent
            } catch {
                sendFailure = error
            }
        }
        if sendOffset == sendBuffer.count {
            sendBuffer.removeAll(keepingCapacity: sendBuffer.capacity <= 2 * highWaterMarkBytes)
            sendOffset = 0
        } else if sendOffset >= highWaterMarkBytes {
            sendBuffer.removeFirst(sendOffset)
            sendOffset = 0
        }
    }

    private func takeSatisfiedDrainWaitersLocked() -> [(DrainWaiter, (any Error)?)] {
        let buffered = sendBuffer.count - sendOffset
        var woken: [(DrainWaiter, (any Error)?)] = []
        drainWaiters.removeAll { waiter in
            if let sendFailure {
                woken.append((waiter, sendFailure))
                return true
            }
            if buffered <= waiter.thresholdBytes {
                woken.append((waiter, nil))
                return true
            }
            return false
        }
        return woken
    }

    private func finish(_ waiter: DrainWaiter, _ error: (any Error)?) {
        if let timer = waiter.timer { loop.cancelTimer(timer) }
        if let error {
            waiter.continuation.resume(throwing: error)
        } else {
            waiter.continuation.resume()
        }
    }

    // MARK: Closing

    /// Sends everything buffered, then shuts down our sending side (the peer
    /// reads end of stream). Reading stays possible.
    public func shutdownWrite(deadline: ContinuousClock.Instant? = nil) async throws {
        try await waitForDrain(toBytes: 0, deadline: deadline)
        try lock.withLock {
            guard !isClosed else { throw NetError.closed(operation: "shutdown") }
            guard !isWriteShutdown else { return }
            isWriteShutdown = true
            try Syscall.run("shutdown", path: peerDescription) { shutdown(descriptor, Int32(SHUT_WR)) }
        }
    }

    /// Graceful close: send what is buffered, shut down our side, read (and
    /// discard) until the peer closes its side, then release the socket. If
    /// another task is blocked in `read`, that task sees the close instead of
    /// this one draining; starting a new `read` while `close` drains is a
    /// programmer error. At `deadline` (default
    /// ``defaultCloseTimeout``) the connection is aborted instead and
    /// ``NetError/timedOut(operation:address:)`` thrown.
    public func close(deadline: ContinuousClock.Instant? = nil) async throws {
        if lock.withLock({ isClosed }) { return }
        let deadline = deadline ?? .now + Self.defaultCloseTimeout
        do {
            try await shutdownWrite(deadline: deadline)
            if !readable.hasWaiter {
                while try await !read(maxBytes: 16 * 1024, deadline: deadline).isEmpty {}
            }
        } catch let error as SystemError where error.errno == ECONNRESET || error.errno == EPIPE || error.errno == ENOTCONN {
            // The peer is gone already: nothing left to be graceful with.
        } catch {
            abort()
            throw error
        }
        release(reset: false)
    }

    /// Closes at once, discarding buffered data; the peer sees a reset. Every
    /// pending operation fails with ``NetError/closed(operation:)``.
    public func abort() {
        release(reset: true)
    }

    /// True once `close` or `abort` released the socket.
    public var isOpen: Bool { lock.withLock { !isClosed } }

    private func release(reset: Bool) {
        let woken: [DrainWaiter] = lock.withLock {
            guard !isClosed else { return [] }
            isClosed = true
            if reset {
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                _ = try? Syscall.run("setsockopt(SO_LINGER)") {
                    setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                }
            }
            loop.deregister(descriptor, id: registrationID)
            Syscall.close(descriptor)
            sendBuffer = []
            sendOffset = 0
            defer { drainWaiters.removeAll() }
            return drainWaiters
        }
        let error = NetError.closed(operation: reset ? "abort" : "close")
        readable.fail(error)
        writable.fail(error)
        for waiter in woken { finish(waiter, error) }
    }
}

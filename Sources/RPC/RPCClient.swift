import Foundation
import Net
import Wire

/// Calls methods on one connection to an `RPCServer`: unary calls and server
/// streams, any number in flight at once, multiplexed by call id (answers
/// may arrive in any order).
///
/// - Deadlines: a call whose deadline passes fails with `deadlineExceeded`
///   at once, and the server is sent a cancel frame (its handler's task is
///   cancelled; it also knows the deadline itself).
/// - Cancellation: cancelling the calling task (or dropping a stream before
///   its end) fails the call with `cancelled` and cancels it on the server.
/// - Streams: at most `streamWindowMessages` messages of one stream are
///   buffered; the server waits for credit beyond that.
/// - A malformed frame from the server closes the connection; every call in
///   flight fails with `protocolViolation`.
///
/// The client owns the connection: `close()` closes it.
public final class RPCClient: @unchecked Sendable {
    private enum PendingCall {
        /// `answer` is called exactly once, with the payload or the error.
        case unary(method: String, timeout: Duration?, answer: @Sendable (Result<[UInt8], any Error>) -> Void)
        case stream(ClientStream, timeout: Duration?)
    }

    /// The largest frame sent or accepted.
    public let maxFrameBytes: Int
    /// Messages of one stream buffered before the server must wait.
    public let streamWindowMessages: Int
    private let transport: any RPCTransport
    private var outbound: OutboundFrames!
    private var timer: DeadlineTimer!
    private var reader: Task<Void, Never>?
    private let lock = NSLock()
    // Guarded by `lock`.
    private var nextCallID: UInt64 = 0
    private var calls: [UInt64: PendingCall] = [:]
    private var closedError: RPCError?
    private var goAwayStatus: RPCStatus?
    private var transportClaimed = false
    private var closeObservers: [@Sendable (RPCError) -> Void] = []
    /// Set once the reader ended: why the connection ended, as best known.
    private var closeReason: RPCError?

    /// A client on a mutual-TLS connection to a node.
    public convenience init(connection: TLSConnection, maxFrameBytes: Int = RPCLimits.defaultMaxFrameBytes,
                            streamWindowMessages: Int = RPCLimits.defaultStreamWindowMessages) {
        self.init(transport: connection, maxFrameBytes: maxFrameBytes, streamWindowMessages: streamWindowMessages)
    }

    /// A client on a plain connection (the local Unix socket).
    public convenience init(connection: Connection, maxFrameBytes: Int = RPCLimits.defaultMaxFrameBytes,
                            streamWindowMessages: Int = RPCLimits.defaultStreamWindowMessages) {
        self.init(transport: connection, maxFrameBytes: maxFrameBytes, streamWindowMessages: streamWindowMessages)
    }

    public init(transport: any RPCTransport, maxFrameBytes: Int = RPCLimits.defaultMaxFrameBytes,
                streamWindowMessages: Int = RPCLimits.defaultStreamWindowMessages) {
        precondition(maxFrameBytes > RPCFrame.maxOverheadBytes + RPCFrame.maxMethodBytes,
                     "maxFrameBytes \(maxFrameBytes) leaves no room for an envelope")
        precondition(streamWindowMessages > 0 && streamWindowMessages <= Int(UInt32.max),
                     "streamWindowMessages must be in 1...\(UInt32.max), got \(streamWindowMessages)")
        self.transport = transport
        self.maxFrameBytes = maxFrameBytes
        self.streamWindowMessages = streamWindowMessages
        outbound = OutboundFrames(transport: transport, maxFrameBytes: maxFrameBytes) { [weak self] error in
            self?.failAll(.connectionClosed(method: "", reason: "writing to the server failed: \(error)"))
        }
        timer = DeadlineTimer { [weak self] callID in self?.expire(callID) }
        // On the connection's loop: an answer is read and handed to its
        // caller (often a Raft transport that sends its next batch from
        // there) on the thread that saw the socket readable.
        reader = Task(executorPreference: transport.eventLoop) { [self] in await self.runReader() }
    }

    /// The largest payload one call or message may carry.
    public var maxPayloadBytes: Int { maxFrameBytes - RPCFrame.maxOverheadBytes - RPCFrame.maxMethodBytes }

    /// Whether calls can still be made (not closed, no failure).
    public var isOpen: Bool { lock.withLock { closedError == nil } }

    /// Calls a unary method and returns its answer.
    ///
    /// - Throws: `RPCError`: the status the server answered with
    ///   (`unimplemented`, `permissionDenied`, the handler's own errors...),
    ///   or `deadlineExceeded`, `cancelled`, `unavailable` (the connection
    ///   closed), `resourceExhausted` (payload over the frame limit).
    public func call(method: String, payload: [UInt8], deadline: ContinuousClock.Instant? = nil) async throws -> [UInt8] {
        let (callID, wireDeadline, timeout) = try prepare(method: method, payload: payload, deadline: deadline)
        try await outbound.waitForRoom()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8], any Error>) in
                let refusal: RPCError? = lock.withLock {
                    if let closedError { return closedError }
                    calls[callID] = .unary(method: method, timeout: timeout, answer: { continuation.resume(with: $0) })
                    return nil
                }
                if let refusal {
                    continuation.resume(throwing: RPCError(refusal.code, method: method, message: refusal.message, hint: refusal.hint))
                    return
                }
                start(callID, method: method, mode: .unary, deadline: deadline, wireDeadline: wireDeadline, payload: payload)
            }
        } onCancel: {
            abandon(callID, with: .cancelled(method: method))
        }
    }

    /// Starts a unary call without waiting for its answer: the request is
    /// queued on the connection before this returns, so calls started one
    /// after another reach the server in that order (with an inline handler
    /// there, they are handled in that order too). `answer` is called once,
    /// from the connection's reader, with the payload or the error. For
    /// pipelining: several calls in flight on one connection.
    public func start(method: String, payload: [UInt8], deadline: ContinuousClock.Instant? = nil,
                      answer: @escaping @Sendable (Result<[UInt8], any Error>) -> Void) async throws {
        let (callID, wireDeadline, timeout) = try prepare(method: method, payload: payload, deadline: deadline)
        try await outbound.waitForRoom()
        let refusal: RPCError? = lock.withLock {
            if let closedError { return closedError }
            calls[callID] = .unary(method: method, timeout: timeout, answer: answer)
            return nil
        }
        if let refusal { throw RPCError(refusal.code, method: method, message: refusal.message, hint: refusal.hint) }
        start(callID, method: method, mode: .unary, deadline: deadline, wireDeadline: wireDeadline, payload: payload)
    }

    /// As ``start(method:payload:deadline:answer:)``, from any thread and
    /// without waiting for room in the outbound queue (the caller bounds
    /// what it has in flight). Throws, without ever calling `answer`, if the
    /// request cannot be queued; otherwise `answer` is called exactly once
    /// (possibly before this returns, if the connection fails meanwhile).
    public func startNow(method: String, payload: [UInt8], deadline: ContinuousClock.Instant? = nil,
                         answer: @escaping @Sendable (Result<[UInt8], any Error>) -> Void) throws {
        let (callID, wireDeadline, timeout) = try prepare(method: method, payload: payload, deadline: deadline)
        let refusal: RPCError? = lock.withLock {
            if let closedError { return closedError }
            calls[callID] = .unary(method: method, timeout: timeout, answer: answer)
            return nil
        }
        if let refusal { throw RPCError(refusal.code, method: method, message: refusal.message, hint: refusal.hint) }
        do {
            try outbound.send(RPCFrame(callID: callID, .request(method: method, mode: .unary, deadlineMilliseconds: wireDeadline,
                                                                 windowMessages: 0, payload: payload)))
        } catch {
            // The connection may have failed between registering the call and
            // queuing it: then `failAll` took the call and answers it (maybe
            // right now, on the reader's thread), so this must not throw too
            // — a caller counting its calls in flight would count one twice.
            let stillOurs = lock.withLock { calls.removeValue(forKey: callID) != nil }
            if stillOurs { throw RPCError(error.code, method: method, message: error.message, hint: error.hint) }
            return
        }
        if let deadline { timer.schedule(callID, at: deadline) }
    }

    /// Sends a one-way message to `method` (registered with
    /// ``RPCServer/registerOneWay(_:access:handler:)``): one frame, no
    /// answer, queued on the connection in order with everything sent
    /// before it; from any thread. For message streams whose protocol
    /// acknowledges on its own (Raft). Nothing tells the sender that the
    /// message was taken: a server that refuses it closes the connection,
    /// which ``whenClosed(_:)`` reports with the server's reason.
    ///
    /// Returns false, queuing nothing, while the connection's outbound queue
    /// is at its high-water mark (the peer reads slowly): keep the message
    /// and try again after ``waitForRoom()``.
    ///
    /// - Throws: `RPCError`: the connection's failure, or `resourceExhausted`
    ///   (payload over the frame limit).
    public func sendOneWay(method: String, payload: [UInt8]) throws -> Bool {
        guard !method.isEmpty, method.utf8.count <= RPCFrame.maxMethodBytes else {
            throw RPCError(.invalidArgument, method: method, message: "method names are 1 to \(RPCFrame.maxMethodBytes) bytes",
                           hint: "use the name the server registered")
        }
        guard payload.count <= maxPayloadBytes else {
            throw RPCError.payloadTooLarge(method: method, bytes: payload.count, maxBytes: maxPayloadBytes)
        }
        if let refusal = lock.withLock({ closedError }) {
            throw RPCError(refusal.code, method: method, message: refusal.message, hint: refusal.hint)
        }
        do {
            return try outbound.sendIfRoom(RPCFrame(callID: 0, .oneWay(method: method, payload: payload)))
        } catch {
            throw RPCError(error.code, method: method, message: error.message, hint: error.hint)
        }
    }

    /// Waits until the connection's outbound queue is below its high-water
    /// mark (see ``sendOneWay(method:payload:)``).
    public func waitForRoom() async throws {
        try await outbound.waitForRoom()
    }

    /// Calls `observer` once, with the reason, when the connection has
    /// ended (closed by either side, failed, or refused by the server) and
    /// its reader has stopped; at once if that already happened. For
    /// senders of one-way messages, which have no call to fail. The reason
    /// is the server's goAway when it sent one (a refusal says why there,
    /// even when a write failed first). `observer` must not block.
    public func whenClosed(_ observer: @escaping @Sendable (RPCError) -> Void) {
        let closed: RPCError? = lock.withLock {
            if closeReason == nil { closeObservers.append(observer) }
            return closeReason
        }
        if let closed { observer(closed) }
    }

    /// Calls a server-stream method; the stream yields its messages, then
    /// ends (or throws the `RPCError` the call ended with). The call starts
    /// when iteration starts; dropping the stream before its end cancels the
    /// call on the server. Iterate from one task at a time.
    public func stream(method: String, payload: [UInt8], deadline: ContinuousClock.Instant? = nil) -> AsyncThrowingStream<[UInt8], any Error> {
        let handle = StreamCallHandle(client: self, method: method, payload: payload, deadline: deadline)
        return AsyncThrowingStream(unfolding: { try await handle.next() })
    }

    /// Closes the connection: calls in flight fail with `unavailable`.
    public func close() async {
        let claimed = lock.withLock {
            defer { transportClaimed = true }
            return !transportClaimed
        }
        failAll(.connectionClosed(method: "", reason: "the client closed it"))
        await outbound.finish()
        reader?.cancel()
        await reader?.value
        if claimed {
            try? await transport.close(deadline: .now + RPCLimits.closeTimeout)
        }
    }

    // MARK: Calls

    private func prepare(method: String, payload: [UInt8], deadline: ContinuousClock.Instant?) throws -> (UInt64, UInt64, Duration?) {
        guard !method.isEmpty, method.utf8.count <= RPCFrame.maxMethodBytes else {
            throw RPCError(.invalidArgument, method: method, message: "method names are 1 to \(RPCFrame.maxMethodBytes) bytes",
                           hint: "use the name the server registered")
        }
        guard payload.count <= maxPayloadBytes else {
            throw RPCError.payloadTooLarge(method: method, bytes: payload.count, maxBytes: maxPayloadBytes)
        }
        var wireDeadline: UInt64 = 0
        var timeout: Duration?
        if let deadline {
            let remaining = deadline - .now
            guard remaining > .zero else { throw RPCError.deadlineExceeded(method: method, timeout: .zero) }
            timeout = remaining
            // Whole milliseconds, rounded up so the server never gives up first; 0 means none.
            let (seconds, attoseconds) = remaining.components
            wireDeadline = max(1, UInt64(seconds) * 1000 + UInt64((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000))
        }
        let callID: UInt64 = lock.withLock {
            nextCallID += 1
            return nextCallID
        }
        return (callID, wireDeadline, timeout)
    }

    /// Arms the deadline and sends the request of a registered call.
    private func start(_ callID: UInt64, method: String, mode: RPCFrame.Mode, deadline: ContinuousClock.Instant?,
                       wireDeadline: UInt64, payload: [UInt8]) {
        if let deadline { timer.schedule(callID, at: deadline) }
        let window = mode == .serverStream ? UInt32(streamWindowMessages) : 0
        do {
            try outbound.send(RPCFrame(callID: callID, .request(method: method, mode: mode, deadlineMilliseconds: wireDeadline,
                                                                 windowMessages: window, payload: payload)))
        } catch {
            complete(callID, failing: RPCError(error.code, method: method, message: error.message, hint: error.hint), sendCancel: false)
            return
        }
        if Task.isCancelled { abandon(callID, with: .cancelled(method: method)) }
    }

    fileprivate func startStream(method: String, payload: [UInt8], deadline: ContinuousClock.Instant?) async throws -> ClientStream {
        let (callID, wireDeadline, timeout) = try prepare(method: method, payload: payload, deadline: deadline)
        try await outbound.waitForRoom()
        let stream = ClientStream(callID: callID, method: method, windowMessages: streamWindowMessages)
        let refusal: RPCError? = lock.withLock {
            if let closedError { return closedError }
            calls[callID] = .stream(stream, timeout: timeout)
            return nil
        }
        if let refusal { throw RPCError(refusal.code, method: method, message: refusal.message, hint: refusal.hint) }
        start(callID, method: method, mode: .serverStream, deadline: deadline, wireDeadline: wireDeadline, payload: payload)
        return stream
    }

    fileprivate func grantCredit(_ stream: ClientStream) {
        let grant = stream.takeCreditToGrant()
        if grant > 0 { try? outbound.send(RPCFrame(callID: stream.callID, .credit(messages: grant))) }
    }

    /// Gives up on a call (cancellation, deadline, dropped stream): fails it
    /// locally and tells the server to cancel it.
    func abandon(_ callID: UInt64, with error: RPCError) {
        complete(callID, failing: error, sendCancel: true)
    }

    private func complete(_ callID: UInt64, failing error: RPCError, sendCancel: Bool) {
        let call = lock.withLock { calls.removeValue(forKey: callID) }
        guard let call else { return }
        timer.cancel(callID)
        switch call {
        case .unary(_, _, let answer): answer(.failure(error))
        case .stream(let stream, _): stream.fail(error)
        }
        if sendCancel { try? outbound.send(RPCFrame(callID: callID, .cancel)) }
    }

    private func expire(_ callID: UInt64) {
        let pending = lock.withLock { calls[callID] }
        switch pending {
        case .unary(let method, let timeout, _): abandon(callID, with: .deadlineExceeded(method: method, timeout: timeout))
        case .stream(let stream, let timeout): abandon(callID, with: .deadlineExceeded(method: stream.method, timeout: timeout))
        case nil: break
        }
    }

    private func failAll(_ error: RPCError) {
        let failed: [PendingCall] = lock.withLock {
            if closedError == nil { closedError = error }
            defer { calls = [:] }
            return Array(calls.values)
        }
        timer.stop()
        outbound.fail(error)
        for call in failed {
            switch call {
            case .unary(let method, _, let answer):
                answer(.failure(RPCError(error.code, method: method, message: error.message, hint: error.hint)))
            case .stream(let stream, _):
                stream.fail(RPCError(error.code, method: stream.method, message: error.message, hint: error.hint))
            }
        }
    }

    // MARK: Reading

    private func runReader() async {
        var decoder = FrameDecoder(maxFrameBytes: maxFrameBytes)
        var violation: RPCError?
        var ending: RPCError
        while true {
            let bytes: [UInt8]
            do {
                bytes = try await transport.read(maxBytes: RPCLimits.readChunkBytes, deadline: nil)
            } catch {
                ending = .connectionClosed(method: "", reason: "reading from the server failed: \(error)")
                break
            }
            if bytes.isEmpty {
                ending = .connectionClosed(method: "", reason: "the server closed the connection")
                break
            }
            do {
                try decoder.feed(bytes[...]) { frame in
                    if violation == nil { violation = handle(frame) }
                }
            } catch {
                violation = violation ?? RPCServerConnection.violation(error)
            }
            if let violation {
                ending = violation
                break
            }
        }
        if violation == nil, let goAway = lock.withLock({ goAwayStatus }) {
            ending = RPCError(goAway.code == .ok ? .unavailable : goAway.code,
                              message: "the server closed the connection: \(goAway.message)", hint: goAway.hint)
        }
        if let violation { try? outbound.send(RPCFrame(callID: 0, .goAway(RPCStatus(violation)))) }
        failAll(ending)
        let (observers, reason): ([@Sendable (RPCError) -> Void], RPCError) = lock.withLock {
            let sawGoAway = violation == nil && goAwayStatus != nil
            let reason = sawGoAway ? ending : (closedError ?? ending)
            closeReason = reason
            defer { closeObservers = [] }
            return (closeObservers, reason)
        }
        for observer in observers { observer(reason) }
        let claimed = lock.withLock {
            defer { transportClaimed = true }
            return !transportClaimed
        }
        if claimed {
            await outbound.finish()
            try? await transport.close(deadline: .now + RPCLimits.closeTimeout)
        }
    }

    /// Handles one frame from the server; returns a protocol violation that
    /// must close the connection, if it is one.
    private func handle(_ bytes: [UInt8]) -> RPCError? {
        let frame: RPCFrame
        do {
            frame = try RPCFrame(wireBytes: bytes, maxLengthBytes: maxFrameBytes)
        } catch {
            return RPCServerConnection.violation(error)
        }
        let callID = frame.callID
        switch frame.body {
        case .message(let payload):
            let pending: PendingCall? = lock.withLock {
                guard let call = calls[callID] else { return nil }
                if case .unary = call { calls.removeValue(forKey: callID) }
                return call
            }
            switch pending {
            case .unary(_, _, let answer):
                timer.cancel(callID)
                answer(.success(payload))
            case .stream(let stream, _):
                guard stream.deliver(payload) else {
                    return RPCError(.protocolViolation, method: stream.method,
                                    message: "the server sent more messages than the \(stream.windowMessages)-message window allows",
                                    hint: "the server ignores stream credit; the connection was closed")
                }
            case nil:
                break // answer to a call we gave up on
            }
        case .end(let status):
            let pending = lock.withLock { calls.removeValue(forKey: callID) }
            switch pending {
            case .unary(let method, _, let answer):
                timer.cancel(callID)
                answer(.failure(status.error(method: method)))
            case .stream(let stream, _):
                timer.cancel(callID)
                stream.finish(status)
            case nil:
                break
            }
        case .goAway(let status):
            lock.withLock { goAwayStatus = status }
        case .request, .cancel, .credit, .oneWay:
            return RPCError(.protocolViolation, message: "the server sent a \(frame.body.kindName) frame, which only clients send",
                            hint: "the peer is not an RPC server of this version; the connection was closed")
        }
        return nil
    }
}

/// Owns one stream call for the `AsyncThrowingStream` that `RPCClient.stream`
/// returns: starts it on the first pull, grants credit as messages are
/// consumed, and cancels it if the stream is dropped before its end.
private final class StreamCallHandle: @unchecked Sendable {
    private let client: RPCClient
    private let method: String
    private let payload: [UInt8]
    private let deadline: ContinuousClock.Instant?
    private let lock = NSLock()
    private var call: ClientStream? // guarded by `lock`
    private var isFinished = false  // guarded by `lock`

    init(client: RPCClient, method: String, payload: [UInt8], deadline: ContinuousClock.Instant?) {
        self.client = client
        self.method = method
        self.payload = payload
        self.deadline = deadline
    }

    deinit {
        if let call, !isFinished, !call.isDone {
            client.abandon(call.callID, with: .cancelled(method: method))
        }
    }

    func next() async throws -> [UInt8]? {
        let existing = lock.withLock { call }
        let stream: ClientStream
        if let existing {
            stream = existing
        } else {
            do {
                stream = try await client.startStream(method: method, payload: payload, deadline: deadline)
            } catch {
                lock.withLock { isFinished = true }
                throw error
            }
            lock.withLock { call = stream }
        }
        do {
            let element = try await withTaskCancellationHandler {
                try await stream.next()
            } onCancel: { [client, method] in
                client.abandon(stream.callID, with: .cancelled(method: method))
            }
            if element == nil {
                lock.withLock { isFinished = true }
            } else {
                client.grantCredit(stream)
            }
            return element
        } catch {
            lock.withLock { isFinished = true }
            throw error
        }
    }
}

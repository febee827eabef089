import Foundation
import Net
import Wire

/// One connection on an `RPCServer`: reads frames, admits calls (role check,
/// limits), runs each in its own task, and sends their answers.
final class RPCServerConnection: @unchecked Sendable {
    private struct ActiveCall {
        var task: Task<Void, Never>?
        let stream: RPCStreamWriter?
    }

    /// The longest deadline honoured: longer ones (or garbage) are clamped, so
    /// no arithmetic on a peer's number can overflow.
    static let maxDeadlineMilliseconds: UInt64 = 7 * 86_400 * 1000

    private let server: RPCServer
    private let transport: any RPCTransport
    private let peer: NodeIdentity?
    private var outbound: OutboundFrames!
    private var timer: DeadlineTimer!
    private let lock = NSLock()
    // Guarded by `lock`.
    private var calls: [UInt64: ActiveCall] = [:]
    private var isClosed = false

    init(server: RPCServer, transport: any RPCTransport, peer: NodeIdentity?) {
        self.server = server
        self.transport = transport
        self.peer = peer
        outbound = OutboundFrames(transport: transport, maxFrameBytes: server.maxFrameBytes) { [weak self] _ in
            self?.transport.abort() // ends the read loop, which cleans up
        }
        timer = DeadlineTimer { [weak self] callID in self?.expire(callID) }
    }

    private var callerDescription: String {
        peer.map { "\($0.role.rawValue) \($0.nodeID)" } ?? "a caller without a certificate"
    }

    /// Reads and dispatches frames until the peer closes, the transport fails
    /// or the peer breaks the protocol; then cancels every running call and
    /// closes the transport.
    func run() async throws {
        var decoder = FrameDecoder(maxFrameBytes: server.maxFrameBytes)
        var violation: RPCError?
        var failure: (any Error)?
        while violation == nil {
            let bytes: [UInt8]
            do {
                // Read no more requests while our answers pile up unread: a
                // client that stops reading is held back by TCP, not by our memory.
                try await outbound.waitForRoom()
                bytes = try await transport.read(maxBytes: RPCLimits.readChunkBytes, deadline: nil)
            } catch {
                failure = error
                break
            }
            if bytes.isEmpty {
                if !decoder.isAtFrameBoundary {
                    violation = RPCError(.protocolViolation, message: "the connection ended in the middle of a frame (\(decoder.bufferedByteCount) bytes buffered)",
                                         hint: "the client crashed or sent a truncated frame")
                }
                break
            }
            do {
                try decoder.feed(bytes[...]) { frame in
                    if violation == nil { violation = handle(frame) }
                }
            } catch {
                violation = violation ?? Self.violation(error)
            }
        }
        await shutdown(violation: violation)
        if let violation { throw violation }
        if let failure, !(failure is CancellationError) {
            throw RPCError.connectionClosed(method: "", reason: "reading from \(callerDescription) failed: \(failure)")
        }
    }

    static func violation(_ error: any Error) -> RPCError {
        RPCError(.protocolViolation, message: "malformed frame: \(error)",
                 hint: "the peer runs an incompatible version or is corrupt; the connection was closed")
    }

    /// Handles one frame; returns the protocol violation that must close the
    /// connection, if it is one.
    private func handle(_ bytes: [UInt8]) -> RPCError? {
        let frame: RPCFrame
        do {
            frame = try RPCFrame(wireBytes: bytes, maxLengthBytes: server.maxFrameBytes)
        } catch {
            return Self.violation(error)
        }
        let callID = frame.callID
        switch frame.body {
        case .request(let method, let mode, let deadline, let window, let payload):
            return admit(callID: callID, method: method, mode: mode, deadlineMilliseconds: deadline, windowMessages: window, payload: payload)
        case .cancel:
            cancel(callID)
        case .credit(let messages):
            let stream = lock.withLock { calls[callID]?.stream }
            stream?.grant(messages)
        case .goAway:
            break // the client is leaving; it closes next
        case .oneWay(let method, let payload):
            return receiveOneWay(method: method, payload: payload)
        case .message, .end:
            return RPCError(.protocolViolation, message: "a client sent a \(frame.body.kindName) frame (call \(callID)), which only servers send",
                            hint: "the peer is not an RPC client of this version; the connection was closed")
        }
        return nil
    }

    private func refuse(_ callID: UInt64, _ error: RPCError) {
        try? outbound.send(RPCFrame(callID: callID, .end(RPCStatus(error))))
    }

    /// Hands a one-way message to its handler inline. Nothing answers it, so
    /// a refusal is a connection-level error: the returned violation closes
    /// the connection with a goAway that says why.
    private func receiveOneWay(method name: String, payload: [UInt8]) -> RPCError? {
        guard let method = server.method(named: name) else {
            return RPCError(.unimplemented, method: name, message: "this server has no one-way method \(name)",
                            hint: "the peer runs a different version of Shoal; run the same version on every node")
        }
        guard case .oneWay(let handler) = method.handler else {
            return RPCError(.failedPrecondition, method: name, message: "\(name) takes calls, but was sent a one-way message",
                            hint: "the peer runs a different version of Shoal; run the same version on every node")
        }
        guard method.access.permits(peer) else {
            return .permissionDenied(method: name, caller: callerDescription, allowed: method.access)
        }
        do {
            try handler(RPCRequest(callID: 0, method: name, payload: payload, caller: peer, deadline: nil))
        } catch {
            let status = Self.status(for: error, method: name)
            return RPCError(status.code == .ok ? .unknown : status.code, method: name, message: status.message, hint: status.hint)
        }
        return nil
    }

    private func admit(callID: UInt64, method name: String, mode: RPCFrame.Mode, deadlineMilliseconds: UInt64,
                       windowMessages: UInt32, payload: [UInt8]) -> RPCError? {
        let (duplicate, full) = lock.withLock { (calls[callID] != nil, calls.count >= server.maxConcurrentCallsPerConnection) }
        if duplicate {
            return RPCError(.protocolViolation, method: name, message: "call id \(callID) was reused while that call is still running",
                            hint: "the client is buggy; the connection was closed")
        }
        if full {
            refuse(callID, RPCError(.resourceExhausted, method: name,
                                    message: "\(server.maxConcurrentCallsPerConnection) calls are already running on this connection",
                                    hint: "wait for calls to finish or spread them over more connections"))
            return nil
        }
        guard let method = server.method(named: name) else {
            refuse(callID, .unknownMethod(name))
            return nil
        }
        guard method.access.permits(peer) else {
            if peer == nil {
                refuse(callID, RPCError(.unauthenticated, method: name, message: "\(name) requires \(method.access), and the caller presented no certificate",
                                        hint: "join the cluster to get a node certificate"))
            } else {
                refuse(callID, .permissionDenied(method: name, caller: callerDescription, allowed: method.access))
            }
            return nil
        }
        let stream: RPCStreamWriter?
        switch (method.handler, mode) {
        case (.inline(let handler), .unary):
            let request = RPCRequest(callID: callID, method: name, payload: payload, caller: peer, deadline: nil)
            let outcome: RPCFrame.Body
            do {
                let answer = try handler(request)
                let limit = server.maxFrameBytes - RPCFrame.maxOverheadBytes
                outcome = answer.count <= limit ? .message(payload: answer)
                    : .end(RPCStatus(.payloadTooLarge(method: name, bytes: answer.count, maxBytes: limit)))
            } catch {
                outcome = .end(Self.status(for: error, method: name))
            }
            try? outbound.send(RPCFrame(callID: callID, outcome))
            return nil
        case (.unary, .unary):
            stream = nil
        case (.stream, .serverStream):
            stream = RPCStreamWriter(callID: callID, method: name, windowMessages: Int(windowMessages), outbound: outbound)
        case (.oneWay, _):
            refuse(callID, RPCError(.failedPrecondition, method: name, message: "\(name) takes one-way messages, but was called",
                                    hint: "the peer runs a different version of Shoal; run the same version on every node"))
            return nil
        case (.unary, .serverStream), (.inline, .serverStream), (.stream, .unary):
            let kind = mode == .unary ? "a server stream" : "a unary method"
            refuse(callID, RPCError(.failedPrecondition, method: name, message: "\(name) is \(kind), but was called as the other kind",
                                    hint: "use call() for unary methods and stream() for stream methods"))
            return nil
        }
        let deadline: ContinuousClock.Instant? = deadlineMilliseconds == 0 ? nil
            : .now + .milliseconds(Int64(min(deadlineMilliseconds, Self.maxDeadlineMilliseconds)))
        let request = RPCRequest(callID: callID, method: name, payload: payload, caller: peer, deadline: deadline)
        lock.withLock {
            guard !isClosed else { return }
            calls[callID] = ActiveCall(task: nil, stream: stream)
            // Off the event loop the reader runs on: a handler may block or compute.
            calls[callID]!.task = Task(executorPreference: globalConcurrentExecutor) {
                await self.run(request, handler: method.handler, stream: stream)
            }
        }
        if let deadline { timer.schedule(callID, at: deadline) }
        return nil
    }

    private func run(_ request: RPCRequest, handler: RPCServer.Handler, stream: RPCStreamWriter?) async {
        let outcome: RPCFrame.Body
        switch handler {
        case .unary(let handler):
            do {
                let answer = try await handler(request)
                let limit = server.maxFrameBytes - RPCFrame.maxOverheadBytes
                outcome = answer.count <= limit ? .message(payload: answer)
                    : .end(RPCStatus(.payloadTooLarge(method: request.method, bytes: answer.count, maxBytes: limit)))
            } catch {
                outcome = .end(Self.status(for: error, method: request.method))
            }
        case .stream(let handler):
            do {
                try await handler(request, stream!)
                outcome = .end(.ok)
            } catch {
                outcome = .end(Self.status(for: error, method: request.method))
            }
        case .inline, .oneWay:
            preconditionFailure("inline and one-way handlers run in handle(), never in a task")
        }
        // A call cancelled meanwhile (client cancel, deadline) is answered by
        // nobody: the client has stopped waiting.
        let stillActive = lock.withLock { calls.removeValue(forKey: request.callID) != nil }
        guard stillActive else { return }
        timer.cancel(request.callID)
        try? await outbound.sendWhenRoom(RPCFrame(callID: request.callID, outcome))
    }

    static func status(for error: any Error, method: String) -> RPCStatus {
        switch error {
        case let error as RPCError:
            return RPCStatus(error)
        case is CancellationError:
            return RPCStatus(.cancelled(method: method))
        default:
            return RPCStatus(code: .unknown, message: "\(error)", hint: "the handler of \(method) failed; see the server's log")
        }
    }

    /// Cancels a call's handler; nothing is sent (the client asked for it).
    private func cancel(_ callID: UInt64) {
        let call = lock.withLock { calls.removeValue(forKey: callID) }
        guard let call else { return }
        timer.cancel(callID)
        call.stream?.fail(CancellationError())
        call.task?.cancel()
    }

    /// A call's deadline passed: cancel its handler and tell the client (which
    /// has usually given up on its own by then).
    private func expire(_ callID: UInt64) {
        let call = lock.withLock { calls.removeValue(forKey: callID) }
        guard let call else { return }
        call.stream?.fail(CancellationError())
        call.task?.cancel()
        refuse(callID, RPCError.deadlineExceeded(method: "", timeout: nil))
    }

    private func shutdown(violation: RPCError?) async {
        timer.stop()
        let active: [ActiveCall] = lock.withLock {
            isClosed = true
            defer { calls = [:] }
            return Array(calls.values)
        }
        for call in active {
            call.stream?.fail(CancellationError())
            call.task?.cancel()
        }
        if let violation {
            try? outbound.send(RPCFrame(callID: 0, .goAway(RPCStatus(violation))))
        }
        await outbound.finish()
        // Graceful: our goAway and close_notify reach a peer that still reads;
        // one that does not is reset at the deadline.
        try? await transport.close(deadline: .now + RPCLimits.closeTimeout)
    }
}

extension RPCFrame.Body {
    var kindName: String {
        switch self {
        case .request: return "request"
        case .message: return "message"
        case .end: return "end"
        case .cancel: return "cancel"
        case .credit: return "credit"
        case .goAway: return "goAway"
        case .oneWay: return "oneWay"
        }
    }
}

import Foundation
import Net
import Posix
import RPC
import Testing

/// `startNow` either throws (and never answers) or answers exactly once,
/// even when the connection fails between registering a call and queuing
/// its request. The Raft peer transport counts its calls in flight on that
/// promise: a call both refused and answered counted one call twice, the
/// count went negative, and the transport never reconnected to a manager
/// that had restarted (a 1-in-10 hang of the cluster restart tests).
@Suite("RPCClient.startNow when the connection fails mid-call")
struct RPCClientStartNowTests {
    @Test("a call refused because the reader already failed it is answered once and not thrown")
    func failureBetweenRegisteringAndQueuing() async throws {
        let transport = try ClosingTransport()
        let client = RPCClient(transport: transport)
        transport.clientIsOpen = { [weak client] in client?.isOpen ?? false }
        let answers = AnswerCount()
        var threw = false
        do {
            try client.startNow(method: "test.method", payload: [1, 2, 3], deadline: .now + .seconds(30)) { _ in answers.add() }
        } catch {
            threw = true
        }
        // Whatever startNow did, the reader's failure has been delivered by now.
        let deadline = ContinuousClock.now + .seconds(10)
        while answers.count == 0 && !threw && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(transport.writeAttempts == 1, "the race was not set up: the request never reached the transport")
        #expect(threw ? answers.count == 0 : answers.count == 1,
                "startNow threw: \(threw), answers: \(answers.count) — exactly one of the two must report the failure")
        #expect(!client.isOpen)
        await client.close()
    }
}

private final class AnswerCount: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func add() { lock.withLock { value += 1 } }
    var count: Int { lock.withLock { value } }
}

/// A transport whose first write lets the reader see the peer close, waits
/// until the client has failed every call in flight, then fails itself:
/// the order a peer that dies mid-send produces.
private final class ClosingTransport: RPCTransport, @unchecked Sendable {
    let eventLoop: EventLoop
    let lowWaterMarkBytes = 1 << 16
    private let lock = NSLock()
    private var closedByPeer = false
    private var readerWaiting: CheckedContinuation<[UInt8], any Error>?
    private var writes = 0

    init() throws {
        eventLoop = try EventLoop(name: "closing-transport-test")
    }

    var writeAttempts: Int { lock.withLock { writes } }

    func read(maxBytes: Int, deadline: ContinuousClock.Instant?) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { continuation in
            let closed: Bool = lock.withLock {
                if closedByPeer { return true }
                readerWaiting = continuation
                return false
            }
            if closed { continuation.resume(returning: []) }
        }
    }

    func writeNow(_ bytes: [UInt8]) throws -> Int {
        let reader: CheckedContinuation<[UInt8], any Error>? = lock.withLock {
            writes += 1
            closedByPeer = true
            defer { readerWaiting = nil }
            return readerWaiting
        }
        reader?.resume(returning: [])
        // The reader fails the registered call (it is taken out of the
        // client's table) before this write reports its own failure.
        let deadline = ContinuousClock.now + .seconds(10)
        while clientIsOpen() && ContinuousClock.now < deadline { usleep(1_000) }
        // Let the reader's answer start (it runs beside this thread).
        usleep(20_000)
        throw SystemError(call: "write", errno: EPIPE, path: nil)
    }

    /// Whether the client still takes calls: false once its reader failed them all.
    var clientIsOpen: @Sendable () -> Bool = { true }

    func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant?) async throws {
        throw SystemError(call: "write", errno: EPIPE, path: nil)
    }

    func close(deadline: ContinuousClock.Instant?) async throws {}

    func abort() {}
}

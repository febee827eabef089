import Foundation
import Net
import Raft
import RaftWire
import RPC
import Wire

/// Carries Raft messages between managers over mutual TLS: one RPC
/// connection per peer, messages queued per peer and sent in batches (one
/// call carries everything queued since the last one), so a leader under
/// load makes few round trips. Up to ``maxCallsInFlight`` batches are in
/// flight at once, in order (the server handles them inline, in arrival
/// order), so replication does not wait a round trip between batches.
///
/// Batches leave from the thread that queued them (the Raft loop) or that
/// got the previous answer, with no task in between: every hop between
/// threads is latency on the commit path. A task per peer only connects and
/// backs off. A full queue drops its oldest messages and a failed connection
/// drops what it carried: Raft retransmits.
public final class RPCPeerTransport: PeerTransport, @unchecked Sendable {
    /// Method name of the batch call, allowed for manager certificates only.
    public static let stepMethod = "shoal.raft.step"
    /// Messages queued per peer before the oldest are dropped.
    public static let maxQueuedMessages = 4096
    /// Batches sent to one peer and not yet answered.
    public static let maxCallsInFlight = 8
    public static let connectTimeout: Duration = .seconds(2)
    public static let callTimeout: Duration = .seconds(5)
    static let maxRetryDelay: Duration = .seconds(1)

    private let context: @Sendable () -> TLSContext
    /// Guards everything below and every peer's fields; held while a batch
    /// is queued on its connection, so batches leave in order.
    private let lock = NSLock()
    private var addresses: [NodeID: SocketAddress]
    private var peers: [NodeID: Peer] = [:]
    private var stopped = false

    private final class Peer: @unchecked Sendable {
        let id: NodeID
        var queue: [Message] = []
        /// Set by the connecting task; nil while connecting or after a failure.
        var client: RPCClient?
        var callsInFlight = 0
        /// A call failed: the connection is dropped and rebuilt after a delay.
        var failed = false
        var retryDelay: Duration = .milliseconds(50)
        var connectFailures = 0
        var lastError = ""
        let wake: AsyncStream<Void>.Continuation
        let signals: AsyncStream<Void>
        var task: Task<Void, Never>?

        init(id: NodeID) {
            self.id = id
            (signals, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        }
    }

    /// `context` gives the client TLS context to use for each new connection
    /// (so renewed certificates apply).
    public init(addresses: [NodeID: SocketAddress], context: @escaping @Sendable () -> TLSContext) {
        self.addresses = addresses
        self.context = context
    }

    public func updateAddress(of id: NodeID, to address: SocketAddress?) {
        lock.lock()
        addresses[id] = address
        lock.unlock()
    }

    public func send(_ message: Message) {
        send([message])
    }

    public func send(_ messages: [Message]) {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        var touched: [Peer] = []
        for message in messages {
            let peer = peerLocked(message.to)
            if peer.queue.count >= Self.maxQueuedMessages { peer.queue.removeFirst(peer.queue.count - Self.maxQueuedMessages + 1) }
            peer.queue.append(message)
            if !touched.contains(where: { $0 === peer }) { touched.append(peer) }
        }
        for peer in touched { pumpLocked(peer) }
    }

    /// Each peer's connection state, for failure reports.
    public var diagnostics: String {
        lock.withLock {
            peers.values.sorted { $0.id < $1.id }.map { peer in
                "\(peer.id)@\(addresses[peer.id].map { "\($0)" } ?? "?"): \(peer.client == nil ? "unconnected" : "connected")"
                    + "\(peer.failed ? " failed" : "") calls \(peer.callsInFlight) queued \(peer.queue.count)"
                    + " connect-failures \(peer.connectFailures) \(peer.lastError)"
            }.joined(separator: ", ")
        }
    }

    public func stop() {
        lock.lock()
        stopped = true
        let all = Array(peers.values)
        peers.removeAll()
        lock.unlock()
        for peer in all {
            peer.task?.cancel()
            peer.wake.finish()
        }
    }

    private func peerLocked(_ id: NodeID) -> Peer {
        if let existing = peers[id] { return existing }
        let peer = Peer(id: id)
        peers[id] = peer
        peer.task = Task { [weak self] in await self?.runConnector(for: peer) }
        return peer
    }

    /// Sends what `peer` has queued while call slots are free; without a
    /// usable connection, wakes the peer's task to make one.
    private func pumpLocked(_ peer: Peer) {
        guard !peer.queue.isEmpty else { return }
        guard !peer.failed, let client = peer.client else {
            peer.wake.yield()
            return
        }
        while !peer.queue.isEmpty && peer.callsInFlight < Self.maxCallsInFlight {
            var writer = WireWriter()
            writer.writeArray(peer.queue)
            peer.queue.removeAll(keepingCapacity: true)
            do {
                try client.startNow(method: Self.stepMethod, payload: writer.bytes, deadline: .now + Self.callTimeout) { [weak self] result in
                    guard case .failure = result else {
                        self?.finishCall(peer, failed: false)
                        return
                    }
                    self?.finishCall(peer, failed: true)
                }
                peer.callsInFlight += 1
            } catch {
                // The batch is lost with the connection; Raft resends what matters.
                markFailedLocked(peer)
                return
            }
        }
    }

    private func markFailedLocked(_ peer: Peer) {
        peer.failed = true
        peer.wake.yield()
    }

    /// A call ended: frees its slot and sends what queued meanwhile, from
    /// the thread that read the answer.
    private func finishCall(_ peer: Peer, failed: Bool) {
        lock.lock()
        defer { lock.unlock() }
        peer.callsInFlight -= 1
        if failed {
            markFailedLocked(peer)
        } else {
            peer.retryDelay = .milliseconds(50)
            if !stopped { pumpLocked(peer) }
        }
    }

    /// Connects when messages wait without a connection, and after a failure
    /// drops the connection, waits for its calls to end and backs off, so
    /// an unreachable peer does not spin.
    private func runConnector(for peer: Peer) async {
        for await _ in peer.signals {
            let (failed, needsConnection, callsOut) = lock.withLock { (peer.failed, peer.client == nil && !peer.queue.isEmpty, peer.callsInFlight) }
            if failed {
                let broken = lock.withLock { () -> RPCClient? in
                    defer { peer.client = nil }
                    return peer.client
                }
                await broken?.close()
                guard callsOut == 0 else { continue }  // their failures wake us again
                let delay = lock.withLock { peer.retryDelay }
                try? await Task.sleep(for: delay)
                lock.withLock {
                    peer.retryDelay = min(delay * 2, Self.maxRetryDelay)
                    peer.failed = false
                }
                if Task.isCancelled { break }
                peer.wake.yield()
                continue
            }
            guard needsConnection, let address = lock.withLock({ addresses[peer.id] }) else { continue }
            do {
                let connection = try await TLSConnection.connect(to: address, context: context(), deadline: .now + Self.connectTimeout)
                let client = RPCClient(connection: connection)
                let kept = lock.withLock { () -> Bool in
                    guard !stopped else { return false }
                    peer.client = client
                    pumpLocked(peer)
                    return true
                }
                if !kept { await client.close() }
            } catch {
                lock.withLock {
                    peer.connectFailures += 1
                    peer.lastError = "\(error)"
                    markFailedLocked(peer)
                }
            }
        }
        let last = lock.withLock { peer.client }
        await last?.close()
    }

    /// Serves the step method on `server`, handing every message to `manager`.
    /// Inline: the batch goes to the Raft thread straight from the reading
    /// task, in arrival order, and the sender's next batch is not held up
    /// by a task hop on this side.
    public static func register(on server: RPCServer, manager: ManagerRaft) {
        server.registerInline(stepMethod, access: .managers) { request in
            var reader = WireReader(request.payload)
            let messages = try reader.readArray(of: Message.self)
            try reader.expectEnd()
            manager.receive(messages)
            return []
        }
    }
}

import Foundation
import Net
import Raft
import RaftWire
import RPC
import Wire

/// Carries Raft messages between managers over mutual TLS: one RPC
/// connection per peer, messages queued per peer and sent in batches as
/// one-way RPC messages (one frame each, no answer frame: Raft acknowledges
/// on its own, so an RPC answer per batch would only double the frames and
/// the wake-ups on the commit path).
///
/// Batches leave from the thread that queued them (the Raft loop), with no
/// task in between: every hop between threads is latency on the commit
/// path. A task per peer only connects, backs off, and waits for room when
/// the connection is backed up. A full queue drops its oldest messages and
/// a failed connection drops what it had not written: Raft retransmits.
///
/// Managers of a cluster must run the same version: a peer that predates
/// one-way messages refuses them (its goAway names the frame format), and
/// this side refuses the calls such a peer sends (``legacyStepMethod``);
/// both are reported through `report`, once per peer and reason.
public final class RPCPeerTransport: PeerTransport, @unchecked Sendable {
    /// One-way method that carries a batch of Raft messages (an RPC frame of
    /// format version 2), allowed for manager certificates only.
    public static let messagesMethod = "shoal.raft.messages"
    /// The call that managers before one-way messages sent batches with;
    /// refused with an error that names the version mismatch.
    public static let legacyStepMethod = "shoal.raft.step"
    /// Messages queued per peer before the oldest are dropped.
    public static let maxQueuedMessages = 4096
    /// Payload bytes aimed at per batch, well under the frame limit (the
    /// estimate per message is rough; a batch over the limit is dropped).
    public static let batchTargetBytes = 4 * 1024 * 1024
    public static let connectTimeout: Duration = .seconds(2)
    static let firstRetryDelay: Duration = .milliseconds(50)
    static let maxRetryDelay: Duration = .seconds(1)
    /// A connection that lived this long was healthy: the next failure
    /// retries quickly again. Shorter ones (a peer that refuses us) back off.
    static let healthyConnectionDuration: Duration = .seconds(5)

    private let context: @Sendable () -> TLSContext
    private let report: @Sendable (String) -> Void
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
        /// The connection failed: it is dropped and rebuilt after a delay.
        var failed = false
        /// The connection's outbound queue is full: the task waits for room.
        var awaitingRoom = false
        var retryDelay = RPCPeerTransport.firstRetryDelay
        var connectedAt: ContinuousClock.Instant?
        var connectFailures = 0
        var lastError = ""
        /// The last refusal reported, so a peer that keeps refusing is reported once.
        var reportedRefusal: String?
        let wake: AsyncStream<Void>.Continuation
        let signals: AsyncStream<Void>
        var task: Task<Void, Never>?

        init(id: NodeID) {
            self.id = id
            (signals, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        }
    }

    /// `context` gives the client TLS context to use for each new connection
    /// (so renewed certificates apply). `report` is told, once per peer and
    /// reason, when a peer refuses our messages (for the daemon's log).
    public init(addresses: [NodeID: SocketAddress], context: @escaping @Sendable () -> TLSContext,
                report: @escaping @Sendable (String) -> Void = RPCPeerTransport.logToStandardError) {
        self.addresses = addresses
        self.context = context
        self.report = report
    }

    /// The default `report`: one line on standard error.
    public static let logToStandardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data("shoal manager: \(line)\n".utf8))
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
                    + "\(peer.failed ? " failed" : "")\(peer.awaitingRoom ? " awaiting-room" : "") queued \(peer.queue.count)"
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

    /// Writes what `peer` has queued to its connection; without a usable
    /// connection (or with a full one), wakes the peer's task.
    private func pumpLocked(_ peer: Peer) {
        guard !peer.queue.isEmpty, !peer.awaitingRoom else { return }
        guard !peer.failed, let client = peer.client else {
            peer.wake.yield()
            return
        }
        while !peer.queue.isEmpty {
            let count = Self.batchCount(peer.queue)
            var writer = WireWriter()
            writer.writeArray(peer.queue[..<count])
            do {
                guard try client.sendOneWay(method: Self.messagesMethod, payload: writer.bytes) else {
                    peer.awaitingRoom = true
                    peer.wake.yield()
                    return
                }
            } catch let error as RPCError where error.code == .resourceExhausted {
                // One message over the frame limit (a huge snapshot): it can
                // never be sent; drop it rather than the connection.
                reportLocked(peer, "a batch of \(count) Raft messages (\(writer.bytes.count) bytes) exceeds the frame limit and was dropped: \(error)")
            } catch {
                // Nothing was queued; the batch waits for the next connection.
                markFailedLocked(peer)
                return
            }
            peer.queue.removeFirst(count)
        }
    }

    /// How many messages from the front of `queue` make one batch: at least
    /// one, and about ``batchTargetBytes`` at most.
    static func batchCount(_ queue: [Message]) -> Int {
        var bytes = 0
        var count = 0
        for message in queue {
            var estimate = 64 + message.context.count + (message.snapshot?.data.count ?? 0)
            for entry in message.entries { estimate += 32 + entry.data.count }
            if count > 0 && bytes + estimate > batchTargetBytes { break }
            bytes += estimate
            count += 1
        }
        return count
    }

    private func markFailedLocked(_ peer: Peer) {
        peer.failed = true
        peer.wake.yield()
    }

    private func reportLocked(_ peer: Peer, _ line: String) {
        guard peer.reportedRefusal != line else { return }
        peer.reportedRefusal = line
        report("manager \(peer.id): \(line)")
    }

    /// A connection ended. A refusal from the peer (its goAway) is reported:
    /// it means the peer will not take our messages until someone acts.
    private func connectionEnded(_ peer: Peer, _ client: RPCClient, reason: RPCError) {
        lock.lock()
        defer { lock.unlock() }
        switch reason.code {
        case .protocolViolation, .unimplemented, .failedPrecondition, .permissionDenied, .unauthenticated:
            reportLocked(peer, "refused our Raft messages: \(reason.message)\(reason.hint.isEmpty ? "" : "; \(reason.hint)")")
        default:
            break
        }
        guard peer.client === client else { return }
        peer.lastError = "\(reason)"
        markFailedLocked(peer)
    }

    /// Connects when messages wait without a connection, waits for room
    /// when the connection is backed up, and after a failure drops the
    /// connection and backs off, so an unreachable peer does not spin.
    private func runConnector(for peer: Peer) async {
        for await _ in peer.signals {
            let (failed, awaitingRoom, needsConnection, client) = lock.withLock {
                (peer.failed, peer.awaitingRoom, peer.client == nil && !peer.queue.isEmpty, peer.client)
            }
            if failed {
                let broken = lock.withLock { () -> RPCClient? in
                    defer { peer.client = nil; peer.awaitingRoom = false }
                    return peer.client
                }
                await broken?.close()
                let delay = lock.withLock { () -> Duration in
                    if let connectedAt = peer.connectedAt, .now - connectedAt >= Self.healthyConnectionDuration { peer.retryDelay = Self.firstRetryDelay }
                    peer.connectedAt = nil
                    return peer.retryDelay
                }
                try? await Task.sleep(for: delay)
                lock.withLock {
                    peer.retryDelay = min(delay * 2, Self.maxRetryDelay)
                    peer.failed = false
                }
                if Task.isCancelled { break }
                peer.wake.yield()
                continue
            }
            if awaitingRoom, let client {
                let drained = (try? await client.waitForRoom()) != nil
                lock.withLock {
                    peer.awaitingRoom = false
                    if !drained { markFailedLocked(peer) } else if !stopped { pumpLocked(peer) }
                }
                continue
            }
            guard needsConnection, let address = lock.withLock({ addresses[peer.id] }) else { continue }
            do {
                let connection = try await TLSConnection.connect(to: address, context: context(), deadline: .now + Self.connectTimeout)
                let client = RPCClient(connection: connection)
                let kept = lock.withLock { () -> Bool in
                    guard !stopped else { return false }
                    peer.client = client
                    peer.connectedAt = .now
                    pumpLocked(peer)
                    return true
                }
                if kept {
                    client.whenClosed { [weak self] reason in self?.connectionEnded(peer, client, reason: reason) }
                } else {
                    await client.close()
                }
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

    /// Serves ``messagesMethod`` on `server`, handing every batch to
    /// `manager`. Inline: the batch goes to the Raft thread straight from
    /// the reading task, in arrival order, with no hop on this side. Calls
    /// of ``legacyStepMethod`` from managers of an older version are refused
    /// with an error naming the mismatch, reported once per caller.
    public static func register(on server: RPCServer, manager: ManagerRaft,
                                report: @escaping @Sendable (String) -> Void = RPCPeerTransport.logToStandardError) {
        server.registerOneWay(messagesMethod, access: .managers) { request in
            var reader = WireReader(request.payload)
            let messages = try reader.readArray(of: Message.self)
            try reader.expectEnd()
            manager.receive(messages)
        }
        let reported = LegacyCallers()
        server.registerInline(legacyStepMethod, access: .managers) { request in
            let caller = request.caller.map { "\($0.role.rawValue) \($0.nodeID)" } ?? "a caller without a certificate"
            let error = RPCError(.failedPrecondition, method: legacyStepMethod,
                                 message: "\(caller) sends Raft messages as \(legacyStepMethod) calls, which this manager no longer takes (it takes \(messagesMethod) one-way messages)",
                                 hint: "the managers run different versions of Shoal; run the same version on every manager")
            if reported.first(caller) { report(error.message + "; " + error.hint) }
            throw error
        }
    }

    /// Callers of the legacy method already reported.
    private final class LegacyCallers: @unchecked Sendable {
        private let lock = NSLock()
        private var seen: Set<String> = []

        func first(_ caller: String) -> Bool {
            lock.withLock { seen.insert(caller).inserted }
        }
    }
}

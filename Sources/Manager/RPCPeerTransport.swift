import Foundation
import Net
import Raft
import RaftWire
import RPC
import Wire

/// Carries Raft messages between managers over mutual TLS: one RPC
/// connection per peer, messages queued per peer and sent in batches (one
/// call carries everything queued since the last one), so a leader under
/// load makes few round trips. A full queue drops its oldest messages and a
/// failed connection drops what it carried: Raft retransmits.
public final class RPCPeerTransport: PeerTransport, @unchecked Sendable {
    /// Method name of the batch call, allowed for manager certificates only.
    public static let stepMethod = "shoal.raft.step"
    /// Messages queued per peer before the oldest are dropped.
    public static let maxQueuedMessages = 4096
    public static let connectTimeout: Duration = .seconds(2)
    public static let callTimeout: Duration = .seconds(5)
    static let maxRetryDelay: Duration = .seconds(1)

    private let context: @Sendable () -> TLSContext
    private let lock = NSLock()
    private var addresses: [NodeID: SocketAddress]
    private var peers: [NodeID: Peer] = [:]
    private var stopped = false

    private final class Peer: @unchecked Sendable {
        var queue: [Message] = []
        var wake: AsyncStream<Void>.Continuation
        var sender: Task<Void, Never>?
        let signals: AsyncStream<Void>

        init() {
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
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        let peer: Peer
        if let existing = peers[message.to] {
            peer = existing
        } else {
            peer = Peer()
            peers[message.to] = peer
            let id = message.to
            peer.sender = Task { [weak self] in await self?.runSender(for: id, peer: peer) }
        }
        if peer.queue.count >= Self.maxQueuedMessages { peer.queue.removeFirst(peer.queue.count - Self.maxQueuedMessages + 1) }
        peer.queue.append(message)
        peer.wake.yield()
    }

    public func stop() {
        lock.lock()
        stopped = true
        let all = Array(peers.values)
        peers.removeAll()
        lock.unlock()
        for peer in all {
            peer.sender?.cancel()
            peer.wake.finish()
        }
    }

    private func takeBatch(_ peer: Peer) -> [Message] {
        lock.lock()
        defer { lock.unlock() }
        let batch = peer.queue
        peer.queue.removeAll(keepingCapacity: true)
        return batch
    }

    private func address(of id: NodeID) -> SocketAddress? {
        lock.lock()
        defer { lock.unlock() }
        return addresses[id]
    }

    private func runSender(for id: NodeID, peer: Peer) async {
        var client: RPCClient?
        var retryDelay: Duration = .milliseconds(50)
        for await _ in peer.signals {
            while !Task.isCancelled {
                let batch = takeBatch(peer)
                if batch.isEmpty { break }
                do {
                    if client == nil || client?.isOpen == false {
                        guard let address = address(of: id) else { break }
                        let connection = try await TLSConnection.connect(
                            to: address, context: context(), deadline: .now + Self.connectTimeout)
                        client = RPCClient(connection: connection)
                    }
                    var writer = WireWriter()
                    writer.writeArray(batch)
                    _ = try await client!.call(method: Self.stepMethod, payload: writer.bytes, deadline: .now + Self.callTimeout)
                    retryDelay = .milliseconds(50)
                } catch {
                    await client?.close()
                    client = nil
                    // The batch is lost; Raft resends what matters. Back off
                    // so an unreachable peer does not spin.
                    try? await Task.sleep(for: retryDelay)
                    retryDelay = min(retryDelay * 2, Self.maxRetryDelay)
                }
            }
        }
        await client?.close()
    }

    /// Serves the step method on `server`, handing every message to `manager`.
    public static func register(on server: RPCServer, manager: ManagerRaft) {
        server.register(stepMethod, access: .managers) { request in
            var reader = WireReader(request.payload)
            let messages = try reader.readArray(of: Message.self)
            try reader.expectEnd()
            for message in messages { manager.receive(message) }
            return []
        }
    }
}

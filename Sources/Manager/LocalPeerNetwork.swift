import Foundation
import Raft

/// Connects managers in one process (tests, `shoal dev`'s single member):
/// messages are handed straight to the receiver's queue. Links can be cut to
/// simulate partitions.
public final class LocalPeerNetwork: @unchecked Sendable {
    private let lock = NSLock()
    private var members: [NodeID: ManagerRaft] = [:]
    private var cutLinks: Set<[NodeID]> = []

    public init() {}

    public func attach(_ id: NodeID, _ member: ManagerRaft) {
        lock.lock()
        members[id] = member
        lock.unlock()
    }

    public func detach(_ id: NodeID) {
        lock.lock()
        members[id] = nil
        lock.unlock()
    }

    /// Cuts every link to and from `id`.
    public func isolate(_ id: NodeID) {
        lock.lock()
        for other in members.keys where other != id {
            cutLinks.insert([id, other])
            cutLinks.insert([other, id])
        }
        lock.unlock()
    }

    public func heal() {
        lock.lock()
        cutLinks.removeAll()
        lock.unlock()
    }

    /// The transport member `id` sends through.
    public func transport(for id: NodeID) -> PeerTransport { Endpoint(network: self) }

    fileprivate func deliver(_ message: Message) {
        lock.lock()
        let target = cutLinks.contains([message.from, message.to]) ? nil : members[message.to]
        lock.unlock()
        target?.receive(message)
    }

    private final class Endpoint: PeerTransport, @unchecked Sendable {
        weak var network: LocalPeerNetwork?
        init(network: LocalPeerNetwork) { self.network = network }
        func send(_ message: Message) { network?.deliver(message) }
    }
}

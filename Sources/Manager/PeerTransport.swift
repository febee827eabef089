import Raft

/// Carries Raft messages between managers. Delivery may be lost, duplicated
/// or reordered; Raft copes. `send` must not block: it queues and returns.
public protocol PeerTransport: AnyObject, Sendable {
    func send(_ message: Message)
    /// Sends `messages` in order; a transport may batch them per peer.
    func send(_ messages: [Message])
}

extension PeerTransport {
    public func send(_ messages: [Message]) {
        for message in messages { send(message) }
    }
}

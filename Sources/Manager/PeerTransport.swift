import Raft

/// Carries Raft messages between managers. Delivery may be lost, duplicated
/// or reordered; Raft copes. `send` must not block: it queues and returns.
public protocol PeerTransport: AnyObject, Sendable {
    func send(_ message: Message)
}

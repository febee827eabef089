@testable import Raft

/// Drives several RaftNodes in memory, delivering messages instantly and in
/// order, following the Ready contract. Faults are explicit: cut links, crash.
struct TestCluster {
    var nodes: [NodeID: RaftNode] = [:]
    var storages: [NodeID: MemoryRaftStorage] = [:]
    /// Committed entries each member applied, in order.
    var applied: [NodeID: [Entry]] = [:]
    var readStates: [NodeID: [ReadState]] = [:]
    /// Directed links that drop everything (from, to).
    var cut: Set<[NodeID]> = []
    /// Messages that crossed the network, in order (for assertions).
    var delivered: [Message] = []
    /// Message kinds to drop everywhere.
    var droppedKinds: Set<Message.Kind> = []
    var optionsTemplate: (NodeID) -> RaftOptions

    init(voters: [NodeID], configure: @escaping (inout RaftOptions) -> Void = { _ in }) {
        optionsTemplate = { id in
            var options = RaftOptions(id: id, seed: 42)
            configure(&options)
            return options
        }
        for id in voters {
            nodes[id] = RaftNode.bootstrap(options: optionsTemplate(id), voters: voters)
            storages[id] = MemoryRaftStorage()
            applied[id] = []
        }
    }

    var ids: [NodeID] { nodes.keys.sorted() }

    /// Adds a brand-new member that knows nothing yet.
    mutating func addEmptyMember(_ id: NodeID) throws {
        nodes[id] = try RaftNode(options: optionsTemplate(id), restoring: .empty)
        storages[id] = MemoryRaftStorage()
        applied[id] = []
    }

    func node(_ id: NodeID) -> RaftNode { nodes[id]! }

    var leaders: [NodeID] { ids.filter { nodes[$0]!.role == .leader } }

    mutating func isolate(_ id: NodeID) {
        for other in ids where other != id {
            cut.insert([id, other])
            cut.insert([other, id])
        }
    }

    mutating func heal() { cut.removeAll() }

    mutating func tick(_ id: NodeID) {
        nodes[id]!.tick()
    }

    mutating func tickAll(times: Int = 1) {
        for _ in 0..<times {
            for id in ids { nodes[id]!.tick() }
            stabilize()
        }
    }

    /// Elects `id`: it campaigns at once, as after a leadership transfer
    /// (which also bypasses the other members' leader lease).
    mutating func elect(_ id: NodeID) {
        for _ in 0..<100 {
            if nodes[id]!.role == .follower, let other = ids.first(where: { $0 != id }) {
                nodes[id]!.step(Message(kind: .timeoutNow, from: other, to: id, term: nodes[id]!.term))
            } else {
                nodes[id]!.tick()
            }
            stabilize()
            if nodes[id]!.role == .leader { return }
        }
        preconditionFailure("member \(id) was not elected")
    }

    /// Processes Readies and delivers messages until nothing is left.
    mutating func stabilize(maxRounds: Int = 10_000) {
        for _ in 0..<maxRounds {
            var pending: [Message] = []
            var anyReady = false
            for id in ids where nodes[id]!.hasReady {
                anyReady = true
                var ready = nodes[id]!.ready()
                pending += ready.messagesBeforePersist
                try! storages[id]!.save(ready)
                pending += ready.messages
                applied[id]! += ready.committedEntries
                readStates[id, default: []] += ready.readStates
                nodes[id]!.advance(ready)
                ready = Ready()
            }
            if !anyReady && pending.isEmpty { return }
            for message in pending {
                guard !cut.contains([message.from, message.to]), !droppedKinds.contains(message.kind), nodes[message.to] != nil else { continue }
                delivered.append(message)
                nodes[message.to]!.step(message)
            }
        }
        preconditionFailure("cluster did not stabilize")
    }

    /// Crashes `id` (losing unsynced writes) and restarts it from storage.
    mutating func crashAndRestart(_ id: NodeID) throws {
        storages[id]!.crash()
        nodes[id] = try RaftNode(options: optionsTemplate(id), restoring: storages[id]!.load())
        applied[id] = []
    }

    @discardableResult
    mutating func propose(_ text: String, at id: NodeID) throws(RaftError) -> UInt64 {
        try nodes[id]!.propose(Array(text.utf8))
    }

    func appliedTexts(_ id: NodeID) -> [String] {
        applied[id]!.filter { $0.kind == .normal && !$0.data.isEmpty }.map { String(decoding: $0.data, as: UTF8.self) }
    }
}

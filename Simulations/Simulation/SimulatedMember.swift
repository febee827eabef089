import ClusterState
import Raft

/// One member's process in the simulation: its Raft node, its disk, and the
/// key-value store it applies to. The node and the store are volatile (lost
/// on a crash); the storage survives, minus its unsynced writes.
final class SimulatedMember {
    let id: NodeID
    let options: RaftOptions
    let storage: MemoryRaftStorage
    /// Nil while crashed or after being removed.
    var node: RaftNode?
    var store = KeyValueStore()
    /// `shoal-sim cluster`: the managers' state machine, fed the cluster entries.
    var cluster = ClusterState()
    /// A digest chained over every cluster entry applied and its outcome, so
    /// members compare their cluster states after every entry without
    /// serializing them (the full snapshots are compared when taken).
    var clusterDigest: UInt64 = 0
    /// The index the store reflects.
    var appliedIndex: UInt64 = 0
    /// The index of the newest snapshot this member took or installed.
    var snapshotIndex: UInt64 = 0
    /// Removed from the group: never runs again.
    var isStopped = false
    /// Crash at the next Ready that has something to send or persist,
    /// between sending `messagesBeforePersist` and persisting.
    var crashAtNextReady = false
    /// Leader writes still running, oldest first (lost on a crash).
    var writesInFlight: [WriteInFlight] = []
    var nextWriteSequence: UInt64 = 1
    /// When the newest write in flight completes: writes complete in order.
    var lastWriteDurableAt: UInt64 = 0

    struct WriteInFlight {
        var sequence: UInt64
        var hardState: HardState?
        var entries: [Entry]
    }

    /// Clients waiting for their write (client index, sequence) to apply here.
    var waitingWrites: [(client: Int, sequence: UInt64)] = []
    var pendingReads: [PendingRead] = []
    /// Cluster writes proposed here, by the index they were appended at.
    var waitingClusterWrites: [WaitingClusterWrite] = []
    /// Cluster reads (`key` is the service number).
    var pendingClusterReads: [PendingRead] = []
    /// The term and role last checked, to notice leadership changes.
    var lastRole: Role = .follower
    var lastTerm: UInt64 = 0

    struct PendingRead {
        var client: Int
        var sequence: UInt64
        var key: UInt64
        var context: [UInt8]
        /// Set when the ReadState arrives: answer once applied through it.
        var index: UInt64?
        /// A cluster write the leader would refuse, confirming that refusal
        /// with this ReadIndex round before answering (as ManagerRaft does).
        var confirmsRefusalOf: ClusterOperation? = nil
        var attempt: UInt64 = 0
    }

    struct WaitingClusterWrite {
        var index: UInt64
        var client: Int
        var sequence: UInt64
        var attempt: UInt64
    }

    init(id: NodeID, options: RaftOptions, storage: MemoryRaftStorage) {
        self.id = id
        self.options = options
        self.storage = storage
    }

    var isRunning: Bool { node != nil }

    /// Rebuilds the Raft node from what the storage kept (after a crash);
    /// throws what ``RaftNode/init(options:restoring:)`` throws.
    func restartNode() throws -> PersistentState {
        let state: PersistentState
        do {
            state = try storage.load()
        } catch {
            preconditionFailure("in-memory storage failed: \(error)")
        }
        node = try RaftNode(options: options, restoring: state)
        return state
    }
}

extension Array where Element == SimulatedMember {
    /// The running member that leads in the highest term.
    var leader: SimulatedMember? {
        var best: SimulatedMember?
        for member in self {
            guard let node = member.node, node.role == .leader else { continue }
            if best == nil || node.term > best!.node!.term { best = member }
        }
        return best
    }

    /// The highest term any running member holds.
    var highestRunningTerm: UInt64 {
        var term: UInt64 = 0
        for member in self { if let node = member.node { term = Swift.max(term, node.term) } }
        return term
    }
}

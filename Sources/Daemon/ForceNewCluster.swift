import Foundation
import Raft
import Storage

/// `shoal init --force-new-cluster`: recovers a manager whose group lost its
/// quorum for good, keeping its state (as Swarm's flag does).
///
/// The member's own log is kept whole. One configuration entry naming this
/// member as the only voter is appended after the last entry, in a new term
/// (term + 1), and committed by writing a hard state whose commit index is
/// that entry (a single voter is its own quorum). Entries this member held
/// beyond the old commit index become committed with it: they are the most
/// recent state it knows, which is what an operator recovering a cluster
/// wants. The other members are gone from the configuration; if one of them
/// comes back it holds an older term and a conflicting log, so it must leave
/// and join again (its node shows up as a worker that lost its manager role).
///
/// Raft itself is not touched: this rewrites the storage before the
/// `ManagerRaft` restarts from it.
enum ForceNewCluster {
    static func rewrite(databasePath: String, as member: NodeID) throws {
        let storage = try SQLiteRaftStorage(path: databasePath)
        let persisted = try storage.load()
        let lastIndex = persisted.entries.last?.index ?? persisted.snapshot?.metadata.index ?? 0
        let lastTerm = persisted.entries.last?.term ?? persisted.snapshot?.metadata.term ?? 0
        let term = max(persisted.hardState.term, lastTerm) + 1
        let configuration = Configuration(voters: [member])
        let entry = Entry(term: term, index: lastIndex + 1, kind: .configuration, data: configuration.encoded())
        try storage.save(hardState: HardState(term: term, vote: member, commit: lastIndex + 1), entries: [entry], snapshot: nil, sync: true)
    }
}

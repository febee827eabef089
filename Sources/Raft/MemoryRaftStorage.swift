/// In-memory ``RaftStorage`` for tests and the simulator. It models a disk
/// that loses writes not yet synced: ``crash()`` keeps only what a synced
/// save (or a later one) made durable.
public final class MemoryRaftStorage: RaftStorage {
    private var durable: PersistentState
    /// Saves made with `sync: false` since the last synced one, oldest first.
    private var unsynced: [Write] = []

    private struct Write {
        var hardState: HardState?
        var entries: [Entry]
        var snapshot: Snapshot?
    }

    public init(_ state: PersistentState = .empty) {
        durable = state
    }

    public func load() throws -> PersistentState {
        var state = durable
        for write in unsynced { Self.apply(write, to: &state) }
        return state
    }

    public func save(hardState: HardState?, entries: [Entry], snapshot: Snapshot?, sync: Bool) throws {
        let write = Write(hardState: hardState, entries: entries, snapshot: snapshot)
        if sync {
            for pending in unsynced { Self.apply(pending, to: &durable) }
            unsynced.removeAll()
            Self.apply(write, to: &durable)
        } else {
            unsynced.append(write)
        }
    }

    public func compact(to snapshot: Snapshot) throws {
        for pending in unsynced { Self.apply(pending, to: &durable) }
        unsynced.removeAll()
        let index = snapshot.metadata.index
        let firstIndex = (durable.snapshot?.metadata.index ?? 0) + 1
        if index < firstIndex { return }
        let drop = min(Int(index - firstIndex + 1), durable.entries.count)
        durable.entries.removeFirst(drop)
        durable.snapshot = snapshot
    }

    /// Forgets every write that was not synced, as a power cut would.
    public func crash() {
        unsynced.removeAll()
    }

    /// The durable state only (what survives ``crash()``).
    public var durableState: PersistentState { durable }

    private static func apply(_ write: Write, to state: inout PersistentState) {
        if let snapshot = write.snapshot {
            state.snapshot = snapshot
            state.entries.removeAll()
        }
        if let first = write.entries.first {
            let firstIndex = (state.snapshot?.metadata.index ?? 0) + 1
            if first.index < firstIndex {
                // Entries below the snapshot are covered by it; keep the rest.
                let skip = Int(firstIndex - first.index)
                if skip < write.entries.count {
                    let kept = Array(write.entries[skip...])
                    state.entries.removeAll()
                    state.entries.append(contentsOf: kept)
                }
            } else {
                let keep = Int(first.index - firstIndex)
                if keep < state.entries.count { state.entries.removeSubrange(keep...) }
                state.entries.append(contentsOf: write.entries)
            }
        }
        if let hardState = write.hardState { state.hardState = hardState }
    }
}

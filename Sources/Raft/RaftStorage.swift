/// What a member persisted: enough to restart it exactly where it left off.
public struct PersistentState: Sendable, Equatable {
    public var hardState: HardState
    /// The newest snapshot, whose index precedes `entries`.
    public var snapshot: Snapshot?
    /// Consecutive entries following the snapshot (or index 1 without one).
    public var entries: [Entry]

    public init(hardState: HardState = .empty, snapshot: Snapshot? = nil, entries: [Entry] = []) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
    }

    public static let empty = PersistentState()
}

/// Durable storage for one member's Raft state. The Raft core never calls
/// it: the shell saves each ``Ready`` through it and loads from it on restart.
///
/// Implementations must make each `save` atomic (all of it or none of it
/// after a crash) and durable before returning when `sync` is true.
public protocol RaftStorage: AnyObject {
    /// Everything persisted so far.
    func load() throws -> PersistentState

    /// Persists one Ready's worth of state in a single transaction:
    /// - `snapshot` (an installed snapshot) replaces the whole log;
    /// - `entries` replace any stored entries at the same or higher index
    ///   (suffix truncation on conflict), then extend the log;
    /// - `hardState` replaces the stored hard state.
    func save(hardState: HardState?, entries: [Entry], snapshot: Snapshot?, sync: Bool) throws

    /// Records a snapshot the application took and drops the entries it covers.
    func compact(to snapshot: Snapshot) throws
}

extension RaftStorage {
    /// Persists the durable part of `ready` (step 2 of the ``Ready`` contract).
    public func save(_ ready: Ready) throws {
        if ready.hardState == nil && ready.entries.isEmpty && ready.snapshot == nil { return }
        try save(hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot, sync: ready.mustSync)
    }
}

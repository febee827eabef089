import Raft
import Wire

/// ``RaftStorage`` in one SQLite file (write-ahead log, `synchronous=FULL`):
/// what a manager's Raft shell persists each ``Ready`` into and loads from on
/// restart.
///
/// Every `save` and `compact` is one transaction, so a crash leaves all of it
/// or none of it. A `save` with `sync: true` (and every `compact`) is on
/// stable storage when it returns; `sync: false` commits without an fsync
/// (SQLite's `synchronous=NORMAL` in WAL mode): a power cut may lose it, but
/// never leaves the file inconsistent, and the next synced save makes it durable
/// too. That is what ``Ready/mustSync`` permits.
///
/// Entries are stored one row per saved batch (`entry_batches`: the first and
/// last index and the entries encoded back to back), not one row per entry:
/// a Ready of 64 entries costs one B-tree insert instead of 64, which halves
/// the time of a synced save. Truncating inside a batch rewrites that row's
/// prefix; compacting inside one rewrites its suffix.
///
/// A hard state saved alone without `sync` (a new commit index, which Raft
/// never requires to be durable) is held in memory and written with the next
/// save, so followers do not pay a transaction per heartbeat.
///
/// The storage remembers where the stored log ends and the hard state it
/// last wrote, so the usual save — a batch right after the stored log — runs
/// its inserts and nothing else: no query for the snapshot, no truncation,
/// no rewrite of an unchanged hard state. A failed save forgets both and
/// reads them from the file again.
///
/// ``load()`` checks the invariants the writer keeps and throws
/// ``StorageCorruption`` rather than hand a damaged log to Raft.
///
/// Not thread-safe: one shell owns it.
public final class SQLiteRaftStorage: RaftStorage {
    /// The schema this build writes, kept in `PRAGMA user_version`.
    public static let schemaVersion: Int64 = 2
    /// Upper bound on the encoded entries in one `entry_batches` row; a larger
    /// save is split over several rows.
    public static let maxBatchRowBytes = 1 << 20

    /// The database file.
    public let path: String
    private let database: Database
    /// A commit-only hard state saved without sync, not yet written.
    private var deferredHardState: HardState?

    /// Where the stored log ends, as of the last committed transaction.
    private struct LogTail {
        /// The last stored entry's index (the snapshot's when no entry follows it).
        var lastIndex: UInt64
        var snapshotIndex: UInt64
    }
    /// Kept so that the usual save — entries right after the stored log —
    /// runs no query before its inserts. nil: not known, read it from the file.
    private var tail: LogTail?
    /// The hard state on disk as of the last committed transaction (nil: not known).
    private var storedHardState: HardState?

    /// Opens the storage at `path`, creating the file and the schema if
    /// missing. Throws ``SQLiteError`` (for example when the file is not a
    /// database) or ``StorageOpenError`` (a newer schema, or someone else's database).
    public init(path: String) throws {
        self.path = path
        database = try Database(path: path)
        try migrate()
    }

    deinit {
        // A clean close keeps the commit index it was told, as an unsynced
        // write usually survives; a crash may lose it, which Raft tolerates.
        if let deferredHardState {
            try? save(hardState: deferredHardState, entries: [], snapshot: nil, sync: true)
        }
    }

    // MARK: Schema

    private static let schema = """
        CREATE TABLE hard_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            term INTEGER NOT NULL,
            vote INTEGER NOT NULL,
            commit_index INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE entry_batches (
            first_idx INTEGER PRIMARY KEY,
            last_idx INTEGER NOT NULL,
            payload BLOB NOT NULL
        ) STRICT;
        CREATE TABLE snapshot (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            idx INTEGER NOT NULL,
            term INTEGER NOT NULL,
            configuration BLOB NOT NULL,
            data BLOB NOT NULL
        ) STRICT;
        """

    private func migrate() throws {
        if try schemaVersionOnDisk() == Self.schemaVersion { return }
        try database.transaction {
            // Read again under the write lock: another process may have created it meanwhile.
            let version = try schemaVersionOnDisk()
            if version == Self.schemaVersion { return }
            if version > Self.schemaVersion || version < 0 {
                throw StorageOpenError.schemaFromTheFuture(path: path, found: version, supported: Self.schemaVersion)
            }
            let tables = try database.withStatement(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            ) { statement in
                var names: [String] = []
                while try statement.step() { names.append(statement.text(at: 0) ?? "?") }
                return names
            }
            if version == 1 {
                try migrateFromVersion1()
                return
            }
            if !tables.isEmpty { throw StorageOpenError.foreignDatabase(path: path, tables: tables) }
            try database.execute(Self.schema)
            try database.execute("PRAGMA user_version = \(Self.schemaVersion)")
        }
    }

    /// Version 1 kept one row per entry in `entries`; fold them into batches.
    private func migrateFromVersion1() throws {
        try database.execute(
            "CREATE TABLE entry_batches (first_idx INTEGER PRIMARY KEY, last_idx INTEGER NOT NULL, payload BLOB NOT NULL) STRICT")
        let entries = try database.withStatement("SELECT idx, term, kind, data FROM entries ORDER BY idx") { statement in
            var entries: [Entry] = []
            while try statement.step() {
                let kind = Entry.Kind(rawValue: UInt8(truncatingIfNeeded: statement.int64(at: 2))) ?? .normal
                entries.append(Entry(
                    term: UInt64(max(0, statement.int64(at: 1))), index: UInt64(max(0, statement.int64(at: 0))),
                    kind: kind, data: statement.blob(at: 3)))
            }
            return entries
        }
        try insertBatches(entries)
        try database.execute("DROP TABLE entries")
        try database.execute("PRAGMA user_version = \(Self.schemaVersion)")
    }

    private func schemaVersionOnDisk() throws -> Int64 {
        let version = try database.scalarInt64("PRAGMA user_version") ?? 0
        if version > Self.schemaVersion {
            throw StorageOpenError.schemaFromTheFuture(path: path, found: version, supported: Self.schemaVersion)
        }
        return version
    }

    // MARK: RaftStorage

    public func load() throws -> PersistentState {
        // One transaction, so the three tables are read at one point in time.
        try database.transaction {
            let hardState = try deferredHardState ?? loadHardState()
            let snapshot = try loadSnapshot()
            let entries = try loadEntries(after: snapshot?.metadata)
            let lastIndex = entries.last?.index ?? snapshot?.metadata.index ?? 0
            if hardState.commit > lastIndex {
                throw corruption(
                    "hard_state", "the single row",
                    "commit index \(hardState.commit) is beyond the last stored index \(lastIndex)")
            }
            return PersistentState(hardState: hardState, snapshot: snapshot, entries: entries)
        }
    }

    public func save(hardState: HardState?, entries: [Entry], snapshot: Snapshot?, sync: Bool) throws {
        if hardState == nil && entries.isEmpty && snapshot == nil { return }
        if !sync && entries.isEmpty && snapshot == nil {
            deferredHardState = hardState
            return
        }
        var hardState = hardState ?? deferredHardState
        // Rewriting the row with what it already holds would only add a page to the log.
        if hardState != nil && hardState == storedHardState { hardState = nil }
        for (offset, entry) in entries.enumerated() {
            precondition(
                offset == 0 || entry.index == entries[offset - 1].index + 1,
                "entries to save are not consecutive: index \(entries[offset - 1].index) then \(entry.index)")
        }
        try database.setSynchronous(full: sync)
        do {
            let newTail = try database.transaction {
                var tail = try self.tail ?? readTail()
                if let snapshot {
                    // An installed snapshot replaces the whole log (Raft §7).
                    try deleteAllEntries()
                    try store(snapshot)
                    tail = LogTail(lastIndex: snapshot.metadata.index, snapshotIndex: snapshot.metadata.index)
                }
                // Entries the snapshot covers are already in it; the rest replace
                // whatever is stored at their indexes and above (Raft §5.3).
                let kept = entries.drop { $0.index <= tail.snapshotIndex }
                if let first = kept.first, let last = kept.last {
                    // The common case appends right after the stored log: nothing to truncate.
                    if first.index != tail.lastIndex + 1 { try truncate(from: first.index) }
                    try insertBatches(kept)
                    tail.lastIndex = last.index
                }
                if let hardState {
                    try database.withStatement(
                        "INSERT OR REPLACE INTO hard_state (id, term, vote, commit_index) VALUES (1, ?1, ?2, ?3)"
                    ) { statement in
                        try statement.bind(Self.integer(hardState.term, "hard state term"), at: 1)
                        // Node ids may use all 64 bits; the vote is only compared for equality.
                        try statement.bind(Int64(bitPattern: hardState.vote), at: 2)
                        try statement.bind(Self.integer(hardState.commit, "commit index"), at: 3)
                        try statement.run()
                    }
                }
                return tail
            }
            tail = newTail
            if let hardState { storedHardState = hardState }
        } catch {
            // The transaction rolled back (or its outcome is unknown): ask SQLite next time.
            tail = nil
            storedHardState = nil
            throw error
        }
        deferredHardState = nil
    }

    public func compact(to snapshot: Snapshot) throws {
        try database.setSynchronous(full: true)
        // Compaction is rare: read the tail again at the next save.
        tail = nil
        try database.transaction {
            let index = snapshot.metadata.index
            // Like MemoryRaftStorage: a snapshot at or below the stored one has nothing to add.
            if index <= (try storedSnapshotIndex()) { return }
            try database.withStatement("DELETE FROM entry_batches WHERE last_idx <= ?1") { statement in
                try statement.bind(Self.integer(index, "snapshot index"), at: 1)
                try statement.run()
            }
            // The batch that straddles the snapshot keeps only what follows it.
            if let straddling = try batch(containing: index) {
                try deleteBatch(startingAt: straddling.firstIndex)
                try insertBatches(straddling.entries.filter { $0.index > index })
            }
            try store(snapshot)
        }
    }

    // MARK: Writing

    private func deleteAllEntries() throws {
        try database.withStatement("DELETE FROM entry_batches") { try $0.run() }
    }

    /// Removes every stored entry at `index` and above (Raft §5.3: a
    /// conflicting suffix goes), rewriting the batch that straddles `index`.
    private func truncate(from index: UInt64) throws {
        if index > 1, let straddling = try batch(containing: index - 1), straddling.lastIndex >= index {
            try deleteBatch(startingAt: straddling.firstIndex)
            try insertBatches(straddling.entries.filter { $0.index < index })
        }
        try database.withStatement("DELETE FROM entry_batches WHERE first_idx >= ?1") { statement in
            try statement.bind(Self.integer(index, "entry index"), at: 1)
            try statement.run()
        }
    }

    private func deleteBatch(startingAt firstIndex: UInt64) throws {
        try database.withStatement("DELETE FROM entry_batches WHERE first_idx = ?1") { statement in
            try statement.bind(Self.integer(firstIndex, "entry index"), at: 1)
            try statement.run()
        }
    }

    /// The stored log's end, read from the file.
    private func readTail() throws -> LogTail {
        let snapshotIndex = try storedSnapshotIndex()
        let lastBatchIndex = UInt64(max(0, try database.scalarInt64("SELECT MAX(last_idx) FROM entry_batches") ?? 0))
        return LogTail(lastIndex: max(snapshotIndex, lastBatchIndex), snapshotIndex: snapshotIndex)
    }

    /// Stores consecutive entries as rows of at most ``maxBatchRowBytes``.
    private func insertBatches<Entries: RandomAccessCollection<Entry>>(_ entries: Entries) throws where Entries.Index == Int {
        var start = entries.startIndex
        while start < entries.endIndex {
            // Reserve about the row's size (the data and a few varint bytes per entry): one allocation.
            var capacity = 0
            var end = start
            while end < entries.endIndex && (end == start || capacity + entries[end].data.count + 16 <= Self.maxBatchRowBytes) {
                capacity += entries[end].data.count + 12
                end += 1
            }
            var writer = WireWriter(reservingCapacity: capacity)
            for position in start..<end { EntryBatchCodec.append(entries[position], to: &writer) }
            try database.withStatement("INSERT INTO entry_batches (first_idx, last_idx, payload) VALUES (?1, ?2, ?3)") {
                statement in
                try statement.bind(Self.integer(entries[start].index, "entry index"), at: 1)
                try statement.bind(Self.integer(entries[end - 1].index, "entry index"), at: 2)
                try statement.bind(writer.bytes, at: 3)
                try statement.run()
            }
            start = end
        }
    }

    /// The stored batch whose range holds `index`, decoded.
    private func batch(containing index: UInt64) throws -> (firstIndex: UInt64, lastIndex: UInt64, entries: [Entry])? {
        try database.withStatement(
            "SELECT first_idx, last_idx, payload FROM entry_batches WHERE first_idx <= ?1 ORDER BY first_idx DESC LIMIT 1"
        ) { statement in
            try statement.bind(Self.integer(index, "entry index"), at: 1)
            guard try statement.step() else { return nil }
            let firstIndex = try unsigned(statement, 0, "entry_batches", "a row", "first_idx")
            let row = "first_idx \(firstIndex)"
            let lastIndex = try unsigned(statement, 1, "entry_batches", row, "last_idx")
            guard lastIndex >= index else { return nil }
            let payload = try blob(statement, 2, "entry_batches", row, "payload")
            let entries = try decodeBatch(payload, firstIndex: firstIndex, lastIndex: lastIndex, row: row)
            return (firstIndex, lastIndex, entries)
        }
    }

    private func decodeBatch(_ payload: [UInt8], firstIndex: UInt64, lastIndex: UInt64, row: String) throws -> [Entry] {
        guard lastIndex >= firstIndex else {
            throw corruption("entry_batches", row, "last_idx \(lastIndex) is below first_idx \(firstIndex)")
        }
        do {
            return try EntryBatchCodec.decode(payload, firstIndex: firstIndex, count: lastIndex - firstIndex + 1)
        } catch {
            throw corruption("entry_batches", row, "the payload does not decode: \(error)")
        }
    }

    private func store(_ snapshot: Snapshot) throws {
        try database.withStatement(
            "INSERT OR REPLACE INTO snapshot (id, idx, term, configuration, data) VALUES (1, ?1, ?2, ?3, ?4)"
        ) { statement in
            try statement.bind(Self.integer(snapshot.metadata.index, "snapshot index"), at: 1)
            try statement.bind(Self.integer(snapshot.metadata.term, "snapshot term"), at: 2)
            try statement.bind(snapshot.metadata.configuration.encoded(), at: 3)
            try statement.bind(snapshot.data, at: 4)
            try statement.run()
        }
    }

    /// The index of the stored snapshot, 0 without one.
    private func storedSnapshotIndex() throws -> UInt64 {
        UInt64(max(0, try database.scalarInt64("SELECT idx FROM snapshot WHERE id = 1") ?? 0))
    }

    /// Indexes and terms are stored as SQLite's signed 64-bit integers so that
    /// `ORDER BY` and range deletes work; Raft never gets near 2^63.
    private static func integer(_ value: UInt64, _ what: String) -> Int64 {
        precondition(value <= UInt64(Int64.max), "\(what) \(value) does not fit SQLite's signed 64-bit integers")
        return Int64(value)
    }

    // MARK: Reading and checking

    private func loadHardState() throws -> HardState {
        try database.withStatement("SELECT id, term, vote, commit_index FROM hard_state ORDER BY id") { statement in
            guard try statement.step() else { return .empty }
            let row = "the single row"
            let id = try unsigned(statement, 0, "hard_state", row, "id")
            if id != 1 { throw corruption("hard_state", "id \(id)", "unexpected row (only id 1 may exist)") }
            let term = try unsigned(statement, 1, "hard_state", row, "term")
            let vote = UInt64(bitPattern: try signed(statement, 2, "hard_state", row, "vote"))
            let commit = try unsigned(statement, 3, "hard_state", row, "commit_index")
            if try statement.step() { throw corruption("hard_state", "a second row", "the table must hold one row") }
            return HardState(term: term, vote: vote, commit: commit)
        }
    }

    private func loadSnapshot() throws -> Snapshot? {
        try database.withStatement("SELECT id, idx, term, configuration, data FROM snapshot ORDER BY id") {
            statement in
            guard try statement.step() else { return nil }
            let row = "the single row"
            let id = try unsigned(statement, 0, "snapshot", row, "id")
            if id != 1 { throw corruption("snapshot", "id \(id)", "unexpected row (only id 1 may exist)") }
            let index = try unsigned(statement, 1, "snapshot", row, "idx")
            let term = try unsigned(statement, 2, "snapshot", row, "term")
            let configurationBytes = try blob(statement, 3, "snapshot", row, "configuration")
            guard let configuration = Configuration(encoded: configurationBytes) else {
                throw corruption(
                    "snapshot", row, "the configuration blob (\(configurationBytes.count) bytes) does not decode")
            }
            let data = try blob(statement, 4, "snapshot", row, "data")
            if try statement.step() { throw corruption("snapshot", "a second row", "the table must hold one row") }
            return Snapshot(
                metadata: SnapshotMetadata(index: index, term: term, configuration: configuration), data: data)
        }
    }

    private func loadEntries(after snapshot: SnapshotMetadata?) throws -> [Entry] {
        try database.withStatement("SELECT first_idx, last_idx, payload FROM entry_batches ORDER BY first_idx") {
            statement in
            var entries: [Entry] = []
            var expectedIndex = (snapshot?.index ?? 0) + 1
            var previousTerm = snapshot?.term ?? 0
            while try statement.step() {
                let firstIndex = try unsigned(statement, 0, "entry_batches", "a row", "first_idx")
                let row = "first_idx \(firstIndex)"
                if firstIndex != expectedIndex {
                    let problem =
                        entries.isEmpty
                        ? (snapshot.map { "the first entry must follow the snapshot at index \($0.index), so be \(expectedIndex)" }
                            ?? "the first entry must be index 1")
                        : "entries are not contiguous: expected index \(expectedIndex) after \(expectedIndex - 1)"
                    throw corruption("entry_batches", row, problem)
                }
                let lastIndex = try unsigned(statement, 1, "entry_batches", row, "last_idx")
                let payload = try blob(statement, 2, "entry_batches", row, "payload")
                for entry in try decodeBatch(payload, firstIndex: firstIndex, lastIndex: lastIndex, row: row) {
                    if entry.term < previousTerm {
                        let before = entry.index == (snapshot?.index ?? 0) + 1 ? "the snapshot" : "index \(entry.index - 1)"
                        throw corruption("entry_batches", row, "entry \(entry.index) has term \(entry.term), lower than term \(previousTerm) of \(before)")
                    }
                    if entry.kind == .configuration && Configuration(encoded: entry.data) == nil {
                        throw corruption(
                            "entry_batches", row, "configuration entry \(entry.index) (\(entry.data.count) bytes) does not decode")
                    }
                    previousTerm = entry.term
                    entries.append(entry)
                }
                expectedIndex = lastIndex + 1
            }
            return entries
        }
    }

    private func corruption(_ table: String, _ row: String, _ problem: String) -> StorageCorruption {
        StorageCorruption(path: path, table: table, row: row, problem: problem)
    }

    private func signed(_ statement: Statement, _ column: Int32, _ table: String, _ row: String, _ name: String)
        throws -> Int64
    {
        let type = statement.type(at: column)
        guard type == .integer else { throw corruption(table, row, "column \(name) holds \(type), not an integer") }
        return statement.int64(at: column)
    }

    private func unsigned(_ statement: Statement, _ column: Int32, _ table: String, _ row: String, _ name: String)
        throws -> UInt64
    {
        let value = try signed(statement, column, table, row, name)
        // The writer never stores a negative index, term or commit (see `integer`).
        guard value >= 0 else { throw corruption(table, row, "column \(name) is negative (\(value))") }
        return UInt64(value)
    }

    private func blob(_ statement: Statement, _ column: Int32, _ table: String, _ row: String, _ name: String)
        throws -> [UInt8]
    {
        let type = statement.type(at: column)
        guard type == .blob else { throw corruption(table, row, "column \(name) holds \(type), not a blob") }
        return statement.blob(at: column)
    }
}

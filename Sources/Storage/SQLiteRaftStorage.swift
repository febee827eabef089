import Raft

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
/// ``load()`` checks the invariants the writer keeps and throws
/// ``StorageCorruption`` rather than hand a damaged log to Raft.
///
/// Not thread-safe: one shell owns it.
public final class SQLiteRaftStorage: RaftStorage {
    /// The schema this build writes, kept in `PRAGMA user_version`.
    public static let schemaVersion: Int64 = 1

    /// The database file.
    public let path: String
    private let database: Database

    /// Opens the storage at `path`, creating the file and the schema if
    /// missing. Throws ``SQLiteError`` (for example when the file is not a
    /// database) or ``StorageOpenError`` (a newer schema, or someone else's database).
    public init(path: String) throws {
        self.path = path
        database = try Database(path: path)
        try migrate()
    }

    // MARK: Schema

    private static let schema = """
        CREATE TABLE hard_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            term INTEGER NOT NULL,
            vote INTEGER NOT NULL,
            commit_index INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE entries (
            idx INTEGER PRIMARY KEY,
            term INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            data BLOB NOT NULL
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
            if !tables.isEmpty { throw StorageOpenError.foreignDatabase(path: path, tables: tables) }
            try database.execute(Self.schema)
            try database.execute("PRAGMA user_version = \(Self.schemaVersion)")
        }
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
            let hardState = try loadHardState()
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
        for (offset, entry) in entries.enumerated() {
            precondition(
                offset == 0 || entry.index == entries[offset - 1].index + 1,
                "entries to save are not consecutive: index \(entries[offset - 1].index) then \(entry.index)")
        }
        try database.setSynchronous(full: sync)
        try database.transaction {
            var snapshotIndex: UInt64 = 0
            if let snapshot {
                // An installed snapshot replaces the whole log (Raft §7).
                try deleteAllEntries()
                try store(snapshot)
                snapshotIndex = snapshot.metadata.index
            } else if !entries.isEmpty {
                snapshotIndex = try storedSnapshotIndex()
            }
            // Entries the snapshot covers are already in it; the rest replace
            // whatever is stored at their indexes and above (Raft §5.3).
            let kept = entries.drop { $0.index <= snapshotIndex }
            if let first = kept.first {
                try database.withStatement("DELETE FROM entries WHERE idx >= ?1") { statement in
                    try statement.bind(Self.integer(first.index, "entry index"), at: 1)
                    try statement.run()
                }
                try database.withStatement("INSERT INTO entries (idx, term, kind, data) VALUES (?1, ?2, ?3, ?4)") {
                    statement in
                    for entry in kept {
                        statement.reset()
                        try statement.bind(Self.integer(entry.index, "entry index"), at: 1)
                        try statement.bind(Self.integer(entry.term, "entry term"), at: 2)
                        try statement.bind(Int64(entry.kind.rawValue), at: 3)
                        try statement.bind(entry.data, at: 4)
                        try statement.run()
                    }
                }
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
        }
    }

    public func compact(to snapshot: Snapshot) throws {
        try database.setSynchronous(full: true)
        try database.transaction {
            let index = snapshot.metadata.index
            // Like MemoryRaftStorage: a snapshot at or below the stored one has nothing to add.
            if index <= (try storedSnapshotIndex()) { return }
            try database.withStatement("DELETE FROM entries WHERE idx <= ?1") { statement in
                try statement.bind(Self.integer(index, "snapshot index"), at: 1)
                try statement.run()
            }
            try store(snapshot)
        }
    }

    // MARK: Writing

    private func deleteAllEntries() throws {
        try database.withStatement("DELETE FROM entries") { try $0.run() }
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
        try database.withStatement("SELECT idx, term, kind, data FROM entries ORDER BY idx") { statement in
            var entries: [Entry] = []
            var expectedIndex = (snapshot?.index ?? 0) + 1
            var previousTerm = snapshot?.term ?? 0
            while try statement.step() {
                let index = try unsigned(statement, 0, "entries", "a row", "idx")
                let row = "idx \(index)"
                if index != expectedIndex {
                    let problem =
                        entries.isEmpty
                        ? (snapshot.map { "the first entry must follow the snapshot at index \($0.index), so be \(expectedIndex)" }
                            ?? "the first entry must be index 1")
                        : "entries are not contiguous: expected index \(expectedIndex) after \(expectedIndex - 1)"
                    throw corruption("entries", row, problem)
                }
                let term = try unsigned(statement, 1, "entries", row, "term")
                if term < previousTerm {
                    let before = entries.isEmpty ? "the snapshot" : "index \(index - 1)"
                    throw corruption("entries", row, "term \(term) is lower than term \(previousTerm) of \(before)")
                }
                let kindValue = try signed(statement, 2, "entries", row, "kind")
                guard let rawKind = UInt8(exactly: kindValue), let kind = Entry.Kind(rawValue: rawKind) else {
                    throw corruption("entries", row, "unknown entry kind \(kindValue)")
                }
                let data = try blob(statement, 3, "entries", row, "data")
                if kind == .configuration && Configuration(encoded: data) == nil {
                    throw corruption(
                        "entries", row, "configuration entry payload (\(data.count) bytes) does not decode")
                }
                entries.append(Entry(term: term, index: index, kind: kind, data: data))
                expectedIndex = index + 1
                previousTerm = term
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

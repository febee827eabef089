import CSQLite

/// One SQLite connection (`sqlite3*`), owned by exactly this object and
/// closed when it goes away. Opens the file in write-ahead-log mode with
/// `synchronous=FULL`: a committed transaction is on stable storage when
/// `COMMIT` returns.
///
/// Not thread-safe (opened with `SQLITE_OPEN_NOMUTEX`): one owner uses it
/// from one thread at a time, as the Raft shell does with its storage.
public final class Database {
    /// How long a statement waits for another connection's lock before
    /// failing with `SQLITE_BUSY`.
    public static let defaultBusyTimeoutMilliseconds: Int32 = 5_000

    /// The file this connection opened.
    public let path: String
    /// Whether the file is in write-ahead-log mode. Some file systems
    /// (without shared memory support) refuse WAL; the connection then stays in
    /// rollback-journal mode, which is as durable but slower.
    public let isWriteAheadLog: Bool

    private let handle: OpaquePointer
    /// Prepared statements for hot paths, by SQL text.
    private var statements: [String: Statement] = [:]
    /// The current `PRAGMA synchronous` setting: true for FULL, false for NORMAL.
    private var isSynchronousFull = true

    /// Opens (creating if missing) the database at `path`. The directory must
    /// exist. Fails with `SQLITE_NOTADB` when the file is something else.
    public init(path: String, busyTimeoutMilliseconds: Int32 = defaultBusyTimeoutMilliseconds) throws(SQLiteError) {
        var opened: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &opened, flags, nil)
        guard code == SQLITE_OK, let connection = opened else {
            let message = opened.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_close_v2(opened)
            throw SQLiteError(code: code, message: message, sql: "open", path: path)
        }
        sqlite3_extended_result_codes(connection, 1)
        sqlite3_busy_timeout(connection, busyTimeoutMilliseconds)
        // Configure through the raw handle before `self` is complete, so a
        // failure closes the connection here rather than relying on deinit.
        do {
            // SQLite reads the file header lazily: this is where a file that is
            // not a database fails, with SQLITE_NOTADB.
            let mode = try Self.singleText("PRAGMA journal_mode=WAL", connection: connection, path: path)
            isWriteAheadLog = mode?.lowercased() == "wal"
            _ = try Self.singleText("PRAGMA synchronous=FULL", connection: connection, path: path)
        } catch {
            sqlite3_close_v2(connection)
            throw error
        }
        self.path = path
        self.handle = connection
    }

    deinit {
        statements.removeAll()
        // close_v2 defers the close until every outstanding statement is finalized.
        sqlite3_close_v2(handle)
    }

    /// Runs `sql`, which may hold several statements and must return no rows
    /// that matter (schema creation, pragmas).
    public func execute(_ sql: String) throws(SQLiteError) {
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &message)
        if code != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            throw SQLiteError(code: sqlite3_extended_errcode(handle), message: text, sql: sql, path: path)
        }
    }

    /// A new statement, finalized when the caller drops it. For statements
    /// that run often, use ``withStatement(_:_:)``.
    public func prepare(_ sql: String) throws(SQLiteError) -> Statement {
        try Statement(sql: sql, connection: handle, path: path)
    }

    /// Runs `body` with a cached prepared statement for `sql`, reset before
    /// and after so that no half-read query keeps a read snapshot open.
    /// `body` must not ask for the same `sql` again (it would get the same,
    /// reset, statement).
    public func withStatement<T>(_ sql: String, _ body: (Statement) throws -> T) throws -> T {
        let statement: Statement
        if let cached = statements[sql] {
            statement = cached
        } else {
            statement = try prepare(sql)
            statements[sql] = statement
        }
        statement.reset()
        defer { statement.reset() }
        return try body(statement)
    }

    /// The first column of the first row of `sql`, as an integer (nil when no row).
    public func scalarInt64(_ sql: String) throws -> Int64? {
        try withStatement(sql) { statement in
            try statement.step() ? statement.int64(at: 0) : nil
        }
    }

    /// Runs `body` in a write transaction (`BEGIN IMMEDIATE`, so the write
    /// lock is taken up front and a busy database fails at the start, not
    /// half-way). Commits when `body` returns, rolls back when it throws.
    /// Transactions do not nest.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        precondition(sqlite3_get_autocommit(handle) != 0, "Database.transaction does not nest (\(path))")
        // Cached: every Raft save runs these two.
        try withStatement("BEGIN IMMEDIATE") { try $0.run() }
        do {
            let result = try body()
            try withStatement("COMMIT") { try $0.run() }
            return result
        } catch {
            // A failed COMMIT may already have rolled back (for example after an I/O error).
            if sqlite3_get_autocommit(handle) == 0 {
                _ = try? withStatement("ROLLBACK") { try $0.run() }
            }
            throw error
        }
    }

    /// Sets `PRAGMA synchronous` for the transactions that follow: FULL makes
    /// each commit durable before it returns; NORMAL (only honoured in WAL
    /// mode, where it keeps the database consistent across a crash) lets the
    /// latest commits be lost by a power cut until a later FULL commit or a
    /// checkpoint syncs the log. Must be called outside a transaction.
    public func setSynchronous(full: Bool) throws(SQLiteError) {
        let wanted = full || !isWriteAheadLog
        if wanted == isSynchronousFull { return }
        try execute(wanted ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")
        isSynchronousFull = wanted
    }

    private static func singleText(_ sql: String, connection: OpaquePointer, path: String) throws(SQLiteError) -> String? {
        let statement = try Statement(sql: sql, connection: connection, path: path)
        return try statement.step() ? statement.text(at: 0) : nil
    }
}

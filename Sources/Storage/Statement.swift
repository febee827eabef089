import CSQLite

/// One prepared statement (`sqlite3_stmt`), owned by exactly this object and
/// finalized when it goes away. Made by ``Database/prepare(_:)`` or, for hot
/// paths, ``Database/cached(_:)``.
///
/// Parameter and column indexes follow SQLite: parameters from 1, columns from 0.
/// After a statement has been stepped, call ``reset()`` before binding again
/// (``Database/cached(_:)`` does it for you).
public final class Statement {
    /// The SQL text, for error messages.
    public let sql: String
    private let handle: OpaquePointer
    /// The connection, only to read `sqlite3_errmsg`. The connection is closed
    /// with `sqlite3_close_v2`, which waits for every statement to be finalized,
    /// so this pointer stays valid for the life of the statement.
    private let connection: OpaquePointer
    private let path: String

    init(sql: String, connection: OpaquePointer, path: String) throws(SQLiteError) {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v2(connection, sql, -1, &statement, nil)
        guard code == SQLITE_OK, let statement else {
            sqlite3_finalize(statement)
            throw SQLiteError(code: code, message: String(cString: sqlite3_errmsg(connection)), sql: sql, path: path)
        }
        self.sql = sql
        self.handle = statement
        self.connection = connection
        self.path = path
    }

    deinit {
        sqlite3_finalize(handle)
    }

    // MARK: Binding

    public func bind(_ value: Int64, at index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_int64(handle, index, value))
    }

    /// Binds a blob; an empty array binds an empty blob, not NULL.
    public func bind(_ bytes: [UInt8], at index: Int32) throws(SQLiteError) {
        if bytes.isEmpty {
            // sqlite3_bind_blob with a null pointer would bind NULL.
            try check(sqlite3_bind_zeroblob(handle, index, 0))
            return
        }
        let code = bytes.withUnsafeBytes { buffer in
            sqlite3_bind_blob(handle, index, buffer.baseAddress, Int32(buffer.count), shoal_sqlite_transient())
        }
        try check(code)
    }

    public func bind(_ text: String, at index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_text(handle, index, text, -1, shoal_sqlite_transient()))
    }

    public func bindNull(at index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_null(handle, index))
    }

    // MARK: Running

    /// Runs the statement to its next row: true when a row is available to
    /// read with the column accessors, false when the statement is done.
    @discardableResult
    public func step() throws(SQLiteError) -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw error(code)
        }
    }

    /// Steps until done, for statements that return no rows.
    public func run() throws(SQLiteError) {
        while try step() {}
    }

    /// Makes the statement ready to run again and clears its bindings.
    public func reset() {
        // sqlite3_reset repeats the error of the last step, which step() already reported.
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    // MARK: Columns of the current row

    /// The storage class SQLite holds for a column of the current row.
    public enum ColumnType: Sendable, Equatable {
        case integer, float, text, blob, null
    }

    public func type(at column: Int32) -> ColumnType {
        switch sqlite3_column_type(handle, column) {
        case SQLITE_INTEGER: return .integer
        case SQLITE_FLOAT: return .float
        case SQLITE_TEXT: return .text
        case SQLITE_BLOB: return .blob
        default: return .null
        }
    }

    public func int64(at column: Int32) -> Int64 {
        sqlite3_column_int64(handle, column)
    }

    public func blob(at column: Int32) -> [UInt8] {
        // The pointer must be read before the length (SQLite's documented order).
        guard let pointer = sqlite3_column_blob(handle, column) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, column))
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    public func text(at column: Int32) -> String? {
        guard let pointer = sqlite3_column_text(handle, column) else { return nil }
        return String(cString: pointer)
    }

    // MARK: Errors

    private func check(_ code: Int32) throws(SQLiteError) {
        if code != SQLITE_OK { throw error(code) }
    }

    private func error(_ code: Int32) -> SQLiteError {
        // With extended result codes on, sqlite3_extended_errcode gives the detail (e.g. IOERR_FSYNC).
        let extended = sqlite3_extended_errcode(connection)
        let reported = (extended & 0xFF) == (code & 0xFF) ? extended : code
        return SQLiteError(code: reported, message: String(cString: sqlite3_errmsg(connection)), sql: sql, path: path)
    }
}

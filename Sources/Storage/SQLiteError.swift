import CSQLite

/// A failure reported by SQLite, converted once at the C boundary (in
/// ``Database`` and ``Statement``) and carrying what an operator needs: the
/// result code, SQLite's own message, the statement and the file.
public struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The extended result code (for example `SQLITE_IOERR_FSYNC`); the
    /// primary code is its low byte, see ``primaryCode``.
    public var code: Int32
    /// `sqlite3_errmsg` at the time of the failure.
    public var message: String
    /// The statement that failed, or a description of the call (`open`, `bind`).
    public var sql: String
    /// The database file.
    public var path: String

    public init(code: Int32, message: String, sql: String, path: String) {
        self.code = code
        self.message = message
        self.sql = sql
        self.path = path
    }

    /// The primary result code (`SQLITE_BUSY`, `SQLITE_NOTADB`, ...).
    public var primaryCode: Int32 { code & 0xFF }

    /// Whether the file is not a SQLite database at all.
    public var isNotADatabase: Bool { primaryCode == SQLITE_NOTADB }

    public var description: String {
        "SQLite error \(code) (\(String(cString: sqlite3_errstr(code)))) on \(path): \(message); while running: \(sql). \(advice)"
    }

    /// What to do next, by primary code.
    public var advice: String {
        switch primaryCode {
        case SQLITE_NOTADB:
            return "The file is not a SQLite database: check that the data directory is the right one; "
                + "if it is, move this file aside and restore it from a peer or a backup."
        case SQLITE_CORRUPT:
            return "The database file is damaged: move it aside and restore it from a peer or a backup."
        case SQLITE_BUSY, SQLITE_LOCKED:
            return "Another process holds the database: stop any other shoal process using this data directory and retry."
        case SQLITE_FULL:
            return "The disk is full: free space on the file system holding this file and retry."
        case SQLITE_CANTOPEN:
            return "The file cannot be opened: check that its directory exists and is writable by this user."
        case SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH:
            return "The file is not writable: check its permissions, its owner and that the file system is mounted read-write."
        case SQLITE_IOERR:
            return "The disk reported an I/O error: check the device (dmesg, SMART); do not trust this disk until it is fixed."
        case SQLITE_NOMEM:
            return "SQLite ran out of memory: raise the memory limit of this process."
        default:
            return "This is likely a bug in Shoal: report it with this message."
        }
    }
}

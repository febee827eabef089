/// Why a file could not be opened as Shoal storage although SQLite opened it.
public enum StorageOpenError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The schema version (`PRAGMA user_version`) is newer than this build knows:
    /// a newer Shoal wrote the file.
    case schemaFromTheFuture(path: String, found: Int64, supported: Int64)
    /// The file is a SQLite database, but not one Shoal created (it has tables
    /// and no Shoal schema version).
    case foreignDatabase(path: String, tables: [String])

    public var description: String {
        switch self {
        case .schemaFromTheFuture(let path, let found, let supported):
            return "\(path) has storage schema version \(found), but this shoal supports up to \(supported): "
                + "it was written by a newer shoal. Run that version (or newer), or restore this member from a peer."
        case .foreignDatabase(let path, let tables):
            return "\(path) is a SQLite database that Shoal did not create (it has tables \(tables.joined(separator: ", ")) "
                + "and no Shoal schema version): check the data directory path; Shoal will not write into it."
        }
    }
}

/// Stored Raft state that breaks an invariant the storage itself guarantees,
/// found while loading. The file was damaged (disk, file system, or a hand
/// edit): a member must not start from it, since it could vote or commit
/// against what it promised before.
public struct StorageCorruption: Error, Sendable, Equatable, CustomStringConvertible {
    /// The database file.
    public var path: String
    /// The table holding the bad data.
    public var table: String
    /// The row, as its key (`idx 42`, `the single row`).
    public var row: String
    /// What is wrong with it.
    public var problem: String

    public init(path: String, table: String, row: String, problem: String) {
        self.path = path
        self.table = table
        self.row = row
        self.problem = problem
    }

    public var description: String {
        "Raft storage \(path) is corrupt: table \(table), \(row): \(problem). "
            + "Do not start this member from it: move the file aside and restore this member from a peer or a backup."
    }
}

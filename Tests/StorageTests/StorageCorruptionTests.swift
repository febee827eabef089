import Foundation
import Raft
import Storage
import Testing

/// Damaged files: each test writes a valid log, breaks one row with raw SQL
/// (as a bad disk or a hand edit would), and requires load() to name it.
@Suite struct StorageCorruptionTests {
    /// Snapshot at 5 (term 1), entries 6...10 (terms 1, 1, 2, 2, 2; index 7 a
    /// configuration entry), commit 8.
    static func makeValidLog(at path: String) throws {
        let storage = try SQLiteRaftStorage(path: path)
        let snapshot = Snapshot(
            metadata: SnapshotMetadata(index: 5, term: 1, configuration: Configuration(voters: [1, 2, 3])), data: [42])
        let entries = [
            Entry(term: 1, index: 6, data: [6]),
            Entry(term: 1, index: 7, kind: .configuration, data: Configuration(voters: [1, 2, 3, 4]).encoded()),
            Entry(term: 2, index: 8, data: [8]),
            Entry(term: 2, index: 9, data: [9]),
            Entry(term: 2, index: 10, data: [10]),
        ]
        try storage.save(hardState: HardState(term: 2, vote: 1, commit: 8), entries: entries, snapshot: snapshot, sync: true)
        #expect(try storage.load().entries.count == 5)
    }

    /// Breaks the valid log with `sql` and returns what load() throws.
    func corruption(after sql: String) throws -> StorageCorruption? {
        let directory = try TemporaryDirectory()
        let path = directory.file("raft.db")
        try Self.makeValidLog(at: path)
        try Database(path: path).execute(sql)
        let storage = try SQLiteRaftStorage(path: path)
        let error = #expect(throws: StorageCorruption.self) { _ = try storage.load() }
        if let error {
            #expect(error.path == path)
            #expect(error.description.contains("restore this member from a peer or a backup"))
        }
        return error
    }

    @Test func missingEntryInTheMiddle() throws {
        let error = try corruption(after: "DELETE FROM entries WHERE idx = 8")
        #expect(error?.table == "entries")
        #expect(error?.row == "idx 9")
        #expect(error?.problem.contains("not contiguous") == true)
    }

    @Test func firstEntryDoesNotFollowTheSnapshot() throws {
        let error = try corruption(after: "DELETE FROM entries WHERE idx = 6")
        #expect(error?.table == "entries")
        #expect(error?.row == "idx 7")
        #expect(error?.problem.contains("follow the snapshot at index 5") == true)
    }

    @Test func entryAtOrBelowTheSnapshotIndex() throws {
        let error = try corruption(after: "INSERT INTO entries (idx, term, kind, data) VALUES (5, 1, 0, x'00')")
        #expect(error?.row == "idx 5")
    }

    @Test func firstEntryIsNotOneWithoutASnapshot() throws {
        let error = try corruption(after: "DELETE FROM snapshot; DELETE FROM hard_state")
        #expect(error?.row == "idx 6")
        #expect(error?.problem.contains("must be index 1") == true)
    }

    @Test func unknownEntryKind() throws {
        let error = try corruption(after: "UPDATE entries SET kind = 7 WHERE idx = 9")
        #expect(error?.row == "idx 9")
        #expect(error?.problem == "unknown entry kind 7")
    }

    @Test func undecodableSnapshotConfiguration() throws {
        let error = try corruption(after: "UPDATE snapshot SET configuration = x'ff0102'")
        #expect(error?.table == "snapshot")
        #expect(error?.problem.contains("configuration blob") == true)
    }

    @Test func undecodableConfigurationEntry() throws {
        let error = try corruption(after: "UPDATE entries SET data = x'01' WHERE idx = 7")
        #expect(error?.row == "idx 7")
        #expect(error?.problem.contains("configuration entry") == true)
    }

    @Test func commitBeyondTheLastIndex() throws {
        let error = try corruption(after: "UPDATE hard_state SET commit_index = 11")
        #expect(error?.table == "hard_state")
        #expect(error?.problem.contains("commit index 11 is beyond the last stored index 10") == true)
    }

    @Test func termsDecreaseAlongTheLog() throws {
        let error = try corruption(after: "UPDATE entries SET term = 1 WHERE idx = 9")
        #expect(error?.row == "idx 9")
        #expect(error?.problem.contains("term 1 is lower than term 2 of index 8") == true)
    }

    @Test func firstEntryTermBelowTheSnapshotTerm() throws {
        let error = try corruption(after: "UPDATE snapshot SET term = 2")
        #expect(error?.row == "idx 6")
        #expect(error?.problem.contains("of the snapshot") == true)
    }

    @Test func negativeIndex() throws {
        let error = try corruption(after: "UPDATE entries SET idx = -3 WHERE idx = 6")
        #expect(error?.problem.contains("negative") == true)
    }

    @Test func extraHardStateRow() throws {
        // The CHECK constraint stops this through SQL; a flipped bit would not ask.
        let error = try corruption(after: "PRAGMA ignore_check_constraints = ON; INSERT INTO hard_state VALUES (2, 1, 1, 1)")
        #expect(error?.table == "hard_state")
    }

    @Test func fileThatIsNotADatabase() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("raft.db")
        try Data(String(repeating: "this is a log file, not a database\n", count: 200).utf8).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: SQLiteError.self) { _ = try SQLiteRaftStorage(path: path) }
        #expect(error?.isNotADatabase == true)
        #expect(error?.description.contains(path) == true)
        #expect(error?.description.contains("not a SQLite database") == true)
    }

    @Test func schemaFromTheFuture() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("raft.db")
        try Self.makeValidLog(at: path)
        try Database(path: path).execute("PRAGMA user_version = 99")
        let error = #expect(throws: StorageOpenError.self) { _ = try SQLiteRaftStorage(path: path) }
        #expect(error == .schemaFromTheFuture(path: path, found: 99, supported: SQLiteRaftStorage.schemaVersion))
        #expect(error?.description.contains("written by a newer shoal") == true)
    }

    @Test func someoneElsesDatabase() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("raft.db")
        try Database(path: path).execute("CREATE TABLE users (name TEXT)")
        let error = #expect(throws: StorageOpenError.self) { _ = try SQLiteRaftStorage(path: path) }
        #expect(error == .foreignDatabase(path: path, tables: ["users"]))
    }
}

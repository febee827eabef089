import TestSupport
import Foundation
import Raft
import Storage
import Testing

/// Damaged files: each test writes a valid log, breaks one row with raw SQL
/// (as a bad disk or a hand edit would), and requires load() to name it.
@Suite struct StorageCorruptionTests {
    /// Snapshot at 5 (term 1), entries 6...10 (terms 1, 1, 2, 2, 2; index 7 a
    /// configuration entry), commit 8. Each entry is saved alone, so each is
    /// one `entry_batches` row whose payload is `term kind length data`.
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
        try storage.save(hardState: nil, entries: [], snapshot: snapshot, sync: true)
        for entry in entries {
            try storage.save(hardState: HardState(term: 2, vote: 1, commit: min(entry.index, 8)), entries: [entry], snapshot: nil, sync: true)
        }
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
        let error = try corruption(after: "DELETE FROM entry_batches WHERE first_idx = 8")
        #expect(error?.table == "entry_batches")
        #expect(error?.row == "first_idx 9")
        #expect(error?.problem.contains("not contiguous") == true)
    }

    @Test func firstEntryDoesNotFollowTheSnapshot() throws {
        let error = try corruption(after: "DELETE FROM entry_batches WHERE first_idx = 6")
        #expect(error?.table == "entry_batches")
        #expect(error?.row == "first_idx 7")
        #expect(error?.problem.contains("follow the snapshot at index 5") == true)
    }

    @Test func entryAtOrBelowTheSnapshotIndex() throws {
        let error = try corruption(after: "INSERT INTO entry_batches (first_idx, last_idx, payload) VALUES (5, 5, x'01000100')")
        #expect(error?.row == "first_idx 5")
    }

    @Test func firstEntryIsNotOneWithoutASnapshot() throws {
        let error = try corruption(after: "DELETE FROM snapshot; DELETE FROM hard_state")
        #expect(error?.row == "first_idx 6")
        #expect(error?.problem.contains("must be index 1") == true)
    }

    @Test func unknownEntryKind() throws {
        let error = try corruption(after: "UPDATE entry_batches SET payload = x'02070109' WHERE first_idx = 9")
        #expect(error?.row == "first_idx 9")
        #expect(error?.problem.contains("does not decode") == true)
    }

    @Test func undecodableSnapshotConfiguration() throws {
        let error = try corruption(after: "UPDATE snapshot SET configuration = x'ff0102'")
        #expect(error?.table == "snapshot")
        #expect(error?.problem.contains("configuration blob") == true)
    }

    @Test func undecodableConfigurationEntry() throws {
        let error = try corruption(after: "UPDATE entry_batches SET payload = x'01010101' WHERE first_idx = 7")
        #expect(error?.row == "first_idx 7")
        #expect(error?.problem.contains("configuration entry 7") == true)
    }

    @Test func commitBeyondTheLastIndex() throws {
        let error = try corruption(after: "UPDATE hard_state SET commit_index = 11")
        #expect(error?.table == "hard_state")
        #expect(error?.problem.contains("commit index 11 is beyond the last stored index 10") == true)
    }

    @Test func termsDecreaseAlongTheLog() throws {
        let error = try corruption(after: "UPDATE entry_batches SET payload = x'01000109' WHERE first_idx = 9")
        #expect(error?.row == "first_idx 9")
        #expect(error?.problem.contains("entry 9 has term 1, lower than term 2 of index 8") == true)
    }

    @Test func firstEntryTermBelowTheSnapshotTerm() throws {
        let error = try corruption(after: "UPDATE snapshot SET term = 2")
        #expect(error?.row == "first_idx 6")
        #expect(error?.problem.contains("of the snapshot") == true)
    }

    @Test func negativeIndex() throws {
        let error = try corruption(after: "UPDATE entry_batches SET first_idx = -3 WHERE first_idx = 6")
        #expect(error?.problem.contains("negative") == true)
    }

    @Test func batchRangeDisagreesWithItsPayload() throws {
        let error = try corruption(after: "UPDATE entry_batches SET last_idx = 10 WHERE first_idx = 10; UPDATE entry_batches SET last_idx = 9 WHERE first_idx = 8")
        #expect(error?.row == "first_idx 8")
        #expect(error?.problem.contains("does not decode") == true)
    }

    @Test func garbagePayload() throws {
        let error = try corruption(after: "UPDATE entry_batches SET payload = x'ffffffffffffffffffffff' WHERE first_idx = 6")
        #expect(error?.row == "first_idx 6")
        #expect(error?.problem.contains("does not decode") == true)
    }

    @Test func schemaVersion1IsMigrated() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("raft.db")
        let database = try Database(path: path)
        try database.execute("""
            CREATE TABLE hard_state (id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, vote INTEGER NOT NULL, commit_index INTEGER NOT NULL) STRICT;
            CREATE TABLE entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, kind INTEGER NOT NULL, data BLOB NOT NULL) STRICT;
            CREATE TABLE snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, term INTEGER NOT NULL, configuration BLOB NOT NULL, data BLOB NOT NULL) STRICT;
            INSERT INTO hard_state VALUES (1, 2, 1, 2);
            INSERT INTO entries VALUES (1, 1, 0, x'0a'), (2, 2, 0, x'0b0c'), (3, 2, 0, x'');
            PRAGMA user_version = 1;
            """)
        let storage = try SQLiteRaftStorage(path: path)
        let loaded = try storage.load()
        #expect(loaded.hardState == HardState(term: 2, vote: 1, commit: 2))
        #expect(loaded.entries == [Entry(term: 1, index: 1, data: [10]), Entry(term: 2, index: 2, data: [11, 12]), Entry(term: 2, index: 3)])
        #expect(try Database(path: path).scalarInt64("PRAGMA user_version") == SQLiteRaftStorage.schemaVersion)
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

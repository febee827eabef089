import TestSupport
import Foundation
import Raft
import Storage
import Testing

@Suite struct SQLiteRaftStorageTests {
    static let members = Configuration(voters: [1, 2, 3])

    static func entries(_ indexes: ClosedRange<UInt64>, term: UInt64) -> [Entry] {
        indexes.map { Entry(term: term, index: $0, data: Array("e\($0)t\(term)".utf8)) }
    }

    static func snapshot(index: UInt64, term: UInt64, data: [UInt8] = [9, 9, 9]) -> Snapshot {
        Snapshot(metadata: SnapshotMetadata(index: index, term: term, configuration: members), data: data)
    }

    @Test func newFileLoadsEmpty() throws {
        let directory = try TemporaryDirectory()
        let storage = try SQLiteRaftStorage(path: directory.file("raft.db"))
        #expect(try storage.load() == .empty)
    }

    @Test func roundTripsHardStateEntriesOfBothKindsAndSnapshot() throws {
        let directory = try TemporaryDirectory()
        let storage = try SQLiteRaftStorage(path: directory.file("raft.db"))
        let entries = [
            Entry(term: 3, index: 6, kind: .normal, data: []),  // a leader's no-op
            Entry(term: 3, index: 7, kind: .configuration, data: Configuration(voters: [1, 2], learners: [5]).encoded()),
            Entry(term: 4, index: 8, kind: .normal, data: Array(repeating: 0xAB, count: 70_000)),
        ]
        // A vote for a node id using all 64 bits must survive the signed column.
        let hardState = HardState(term: 4, vote: UInt64.max - 1, commit: 7)
        try storage.save(hardState: nil, entries: [], snapshot: Self.snapshot(index: 5, term: 2), sync: true)
        try storage.save(hardState: hardState, entries: entries, snapshot: nil, sync: true)
        let loaded = try storage.load()
        #expect(loaded == PersistentState(hardState: hardState, snapshot: Self.snapshot(index: 5, term: 2), entries: entries))
    }

    @Test func conflictingEntriesTruncateTheStoredSuffix() throws {
        let directory = try TemporaryDirectory()
        let storage = try SQLiteRaftStorage(path: directory.file("raft.db"))
        try storage.save(hardState: HardState(term: 1, commit: 2), entries: Self.entries(1...6, term: 1), snapshot: nil, sync: true)
        // A new leader of term 2 overwrites from index 4: 5 and 6 must go even
        // though the new batch only reaches index 4.
        try storage.save(hardState: HardState(term: 2, commit: 2), entries: Self.entries(4...4, term: 2), snapshot: nil, sync: true)
        let loaded = try storage.load()
        #expect(loaded.entries == Self.entries(1...3, term: 1) + Self.entries(4...4, term: 2))
        #expect(loaded.hardState == HardState(term: 2, commit: 2))
    }

    @Test func entriesAlreadyCoveredByTheSnapshotAreSkipped() throws {
        let directory = try TemporaryDirectory()
        let storage = try SQLiteRaftStorage(path: directory.file("raft.db"))
        try storage.save(hardState: nil, entries: Self.entries(1...10, term: 1), snapshot: nil, sync: true)
        try storage.compact(to: Self.snapshot(index: 6, term: 1))
        try storage.save(hardState: nil, entries: Self.entries(4...8, term: 2), snapshot: nil, sync: true)
        #expect(try storage.load().entries == Self.entries(7...8, term: 2))
        // All of them covered: nothing changes.
        try storage.save(hardState: nil, entries: Self.entries(2...5, term: 3), snapshot: nil, sync: true)
        #expect(try storage.load().entries == Self.entries(7...8, term: 2))
    }

    @Test func installedSnapshotReplacesTheWholeLog() throws {
        let directory = try TemporaryDirectory()
        let storage = try SQLiteRaftStorage(path: directory.file("raft.db"))
        try storage.save(hardState: HardState(term: 1, commit: 3), entries: Self.entries(1...8, term: 1), snapshot: nil, sync: true)
        // Behind the log (index 5 < 8) as well as ahead of it: either way the log goes.
        let snapshot = Self.snapshot(index: 5, term: 3, data: [1, 2, 3, 4])
        try storage.save(hardState: HardState(term: 3, vote: 2, commit: 5), entries: [], snapshot: snapshot, sync: true)
        #expect(try storage.load() == PersistentState(hardState: HardState(term: 3, vote: 2, commit: 5), snapshot: snapshot, entries: []))
        // Snapshot and the entries after it in one save.
        let later = Self.snapshot(index: 20, term: 4)
        try storage.save(hardState: nil, entries: Self.entries(21...22, term: 4), snapshot: later, sync: true)
        #expect(try storage.load().snapshot == later)
        #expect(try storage.load().entries == Self.entries(21...22, term: 4))
    }

    @Test func compactionDropsCoveredEntriesAndKeepsTheRest() throws {
        let directory = try TemporaryDirectory()
        let storage = try SQLiteRaftStorage(path: directory.file("raft.db"))
        try storage.save(hardState: HardState(term: 2, commit: 9), entries: Self.entries(1...10, term: 2), snapshot: nil, sync: true)
        try storage.compact(to: Self.snapshot(index: 7, term: 2))
        var loaded = try storage.load()
        #expect(loaded.snapshot == Self.snapshot(index: 7, term: 2))
        #expect(loaded.entries == Self.entries(8...10, term: 2))
        #expect(loaded.hardState.commit == 9)
        // An older snapshot changes nothing.
        try storage.compact(to: Self.snapshot(index: 4, term: 2, data: [0]))
        loaded = try storage.load()
        #expect(loaded.snapshot == Self.snapshot(index: 7, term: 2))
        #expect(loaded.entries == Self.entries(8...10, term: 2))
        // Compacting the whole log leaves only the snapshot.
        try storage.compact(to: Self.snapshot(index: 10, term: 2))
        loaded = try storage.load()
        #expect(loaded.entries.isEmpty)
        #expect(loaded.snapshot?.metadata.index == 10)
    }

    @Test func reopeningSeesEverythingSavedIncludingUnsyncedCommits() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("raft.db")
        var expected = PersistentState.empty
        do {
            let storage = try SQLiteRaftStorage(path: path)
            try storage.save(hardState: HardState(term: 1, vote: 1, commit: 0), entries: Self.entries(1...50, term: 1), snapshot: nil, sync: true)
            try storage.compact(to: Self.snapshot(index: 20, term: 1))
            try storage.save(hardState: HardState(term: 2, vote: 3, commit: 30), entries: Self.entries(45...60, term: 2), snapshot: nil, sync: false)
            // A commit-only update that Raft does not require to be synced.
            try storage.save(hardState: HardState(term: 2, vote: 3, commit: 40), entries: [], snapshot: nil, sync: false)
            expected = try storage.load()
        }
        #expect(expected.entries.count == 40)
        let reopened = try SQLiteRaftStorage(path: path)
        #expect(try reopened.load() == expected)
    }

    @Test func aFailedSaveLeavesNothingBehind() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("raft.db")
        let before: PersistentState
        do {
            let storage = try SQLiteRaftStorage(path: path)
            try storage.save(hardState: HardState(term: 1, commit: 2), entries: Self.entries(1...4, term: 1), snapshot: nil, sync: true)
            before = try storage.load()
        }
        // Make the insert of the new batch fail after the truncation happened.
        try Database(path: path).execute("""
            CREATE TRIGGER fail_through_7 BEFORE INSERT ON entry_batches WHEN NEW.last_idx = 7
            BEGIN SELECT RAISE(ABORT, 'injected failure'); END
            """)
        let storage = try SQLiteRaftStorage(path: path)
        let error = #expect(throws: SQLiteError.self) {
            try storage.save(hardState: HardState(term: 2, commit: 3), entries: Self.entries(3...7, term: 2), snapshot: nil, sync: true)
        }
        #expect(error?.message.contains("injected failure") == true)
        // Neither the truncation from 3, nor entries 3...5, nor the hard state happened.
        #expect(try storage.load() == before)
        // And the storage still works.
        try storage.save(hardState: HardState(term: 2, commit: 3), entries: Self.entries(3...5, term: 2), snapshot: nil, sync: true)
        #expect(try storage.load().entries == Self.entries(1...2, term: 1) + Self.entries(3...5, term: 2))
    }

    @Test func aFailedAppendAtTheTailIsForgottenAndTheNextSaveStillLandsInPlace() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("raft.db")
        let storage = try SQLiteRaftStorage(path: path)
        try storage.save(hardState: HardState(term: 1, commit: 2), entries: Self.entries(1...4, term: 1), snapshot: nil, sync: true)
        try Database(path: path).execute("""
            CREATE TRIGGER fail_through_7 BEFORE INSERT ON entry_batches WHEN NEW.last_idx = 7
            BEGIN SELECT RAISE(ABORT, 'injected failure'); END
            """)
        // An append right after the stored log (the path that skips the truncation queries) fails...
        #expect(throws: SQLiteError.self) {
            try storage.save(hardState: HardState(term: 1, commit: 3), entries: Self.entries(5...7, term: 1), snapshot: nil, sync: true)
        }
        // ...so the storage must not believe the log ends at 7: a batch from 5
        // is an append again, and one from 3 replaces the suffix.
        try storage.save(hardState: nil, entries: Self.entries(5...6, term: 1), snapshot: nil, sync: true)
        try storage.save(hardState: HardState(term: 2, commit: 3), entries: Self.entries(3...5, term: 2), snapshot: nil, sync: true)
        let expected = PersistentState(
            hardState: HardState(term: 2, commit: 3), entries: Self.entries(1...2, term: 1) + Self.entries(3...5, term: 2))
        #expect(try storage.load() == expected)
        #expect(try SQLiteRaftStorage(path: path).load() == expected)
    }

    @Test func anUnchangedHardStateIsNotWrittenAgainButAChangedOneIs() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("raft.db")
        let storage = try SQLiteRaftStorage(path: path)
        let hardState = HardState(term: 3, vote: 2, commit: 1)
        try storage.save(hardState: hardState, entries: Self.entries(1...2, term: 3), snapshot: nil, sync: true)
        // Someone else changes the row behind the storage's back; a save of the
        // same hard state does not touch it (the row is not rewritten)...
        try Database(path: path).execute("UPDATE hard_state SET commit_index = 2")
        try storage.save(hardState: hardState, entries: Self.entries(3...3, term: 3), snapshot: nil, sync: true)
        #expect(try SQLiteRaftStorage(path: path).load().hardState == HardState(term: 3, vote: 2, commit: 2))
        // ...while a different one is written.
        try storage.save(hardState: HardState(term: 4, vote: 1, commit: 2), entries: [], snapshot: nil, sync: true)
        #expect(try SQLiteRaftStorage(path: path).load().hardState == HardState(term: 4, vote: 1, commit: 2))
    }
}

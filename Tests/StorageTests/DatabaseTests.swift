import TestSupport
import Foundation
import Storage
import Testing

@Suite struct DatabaseTests {
    @Test func transactionCommitsWhenTheBodyReturns() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db.sqlite")
        do {
            let database = try Database(path: path)
            #expect(database.isWriteAheadLog)
            try database.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
            try database.transaction {
                try database.withStatement("INSERT INTO t (k, v) VALUES (?1, ?2)") { statement in
                    try statement.bind(Int64(7), at: 1)
                    try statement.bind([1, 2, 3], at: 2)
                    try statement.run()
                }
            }
        }
        let reopened = try Database(path: path)
        let statement = try reopened.prepare("SELECT k, v FROM t")
        #expect(try statement.step())
        #expect(statement.int64(at: 0) == 7)
        #expect(statement.blob(at: 1) == [1, 2, 3])
        #expect(try statement.step() == false)
    }

    struct Injected: Error {}

    @Test func transactionRollsBackWhenTheBodyThrows() throws {
        let directory = try TemporaryDirectory()
        let database = try Database(path: directory.file("db.sqlite"))
        try database.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
        #expect(throws: Injected.self) {
            try database.transaction {
                try database.execute("INSERT INTO t (k) VALUES (1)")
                throw Injected()
            }
        }
        #expect(try database.scalarInt64("SELECT count(*) FROM t") == 0)
        // The connection is usable again: no transaction was left open.
        try database.transaction { try database.execute("INSERT INTO t (k) VALUES (2)") }
        #expect(try database.scalarInt64("SELECT count(*) FROM t") == 1)
    }

    @Test func emptyBlobIsStoredAsAnEmptyBlobNotNull() throws {
        let directory = try TemporaryDirectory()
        let database = try Database(path: directory.file("db.sqlite"))
        try database.execute("CREATE TABLE t (v BLOB NOT NULL)")
        try database.withStatement("INSERT INTO t (v) VALUES (?1)") { statement in
            try statement.bind([UInt8](), at: 1)
            try statement.run()
        }
        try database.withStatement("SELECT v, typeof(v) FROM t") { statement throws in
            #expect(try statement.step())
            #expect(statement.type(at: 0) == .blob)
            #expect(statement.blob(at: 0) == [])
            #expect(statement.text(at: 1) == "blob")
        }
    }

    @Test func errorsCarryTheSQLThePathAndAdvice() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db.sqlite")
        let database = try Database(path: path)
        try database.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
        try database.execute("INSERT INTO t (k) VALUES (1)")
        let error = #expect(throws: SQLiteError.self) {
            try database.withStatement("INSERT INTO t (k) VALUES (1)") { try $0.run() }
        }
        #expect(error?.primaryCode == 19)  // SQLITE_CONSTRAINT
        #expect(error?.sql == "INSERT INTO t (k) VALUES (1)")
        #expect(error?.path == path)
        #expect(error?.message.contains("UNIQUE constraint failed") == true)
        #expect(error?.description.contains(path) == true)
    }

    @Test func openingInAMissingDirectorySaysWhatToCheck() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("no/such/dir/db.sqlite")
        let error = #expect(throws: SQLiteError.self) { _ = try Database(path: path) }
        #expect(error?.primaryCode == 14)  // SQLITE_CANTOPEN
        #expect(error?.description.contains(path) == true)
        #expect(error?.description.contains("directory exists") == true)
    }

    @Test func synchronousSwitchesBetweenFullAndNormal() throws {
        let directory = try TemporaryDirectory()
        let database = try Database(path: directory.file("db.sqlite"))
        // SQLite reports FULL as 2 and NORMAL as 1.
        #expect(try database.scalarInt64("PRAGMA synchronous") == 2)
        try database.setSynchronous(full: false)
        #expect(try database.scalarInt64("PRAGMA synchronous") == 1)
        try database.setSynchronous(full: true)
        #expect(try database.scalarInt64("PRAGMA synchronous") == 2)
    }
}

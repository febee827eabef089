import Posix
import Foundation
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// A content-addressed blob store: `root/blobs/sha256/<hex>` holds the bytes
/// whose SHA-256 is `<hex>`, and `root/metadata.sqlite` holds tags (name →
/// manifest digest) and references between blobs (manifest → config and
/// layers, index → manifests).
///
/// Writes go through a ``BlobWriter``: bytes land in a temporary file under
/// `root/ingest/`, are hashed while they stream, and only when the digest
/// (and size, if announced) match are they fsynced and renamed into place and
/// the directory fsynced. A crash, a truncated download or a wrong digest
/// never leaves a half blob under a digest. Two writers racing on the same
/// blob both succeed and leave one correct file (rename is atomic and both
/// files hold the same bytes).
///
/// Garbage collection is mark and sweep: blobs reachable from a tag through
/// references are kept, others are removed by ``prune(minimumAgeSeconds:)``.
/// Commits hold a shared `flock` on `root/lock` and prune an exclusive one,
/// so a blob is never swept between its rename and its metadata row, even
/// across processes.
///
/// Thread-safe: the metadata connection is used under a lock.
public final class ContentStore: @unchecked Sendable {
    /// Size limits applied to every write.
    public struct Limits: Sendable {
        /// The largest blob the store accepts.
        public var maximumBlobBytes: Int64
        public init(maximumBlobBytes: Int64 = 64 << 30) {
            self.maximumBlobBytes = maximumBlobBytes
        }
    }

    /// The longest tag name accepted (Docker's reference limit).
    public static let maximumTagBytes = 255

    public let root: String
    public let limits: Limits
    let blobDirectory: String
    let ingestDirectory: String
    private let database: Database
    private let databaseLock = NSLock()
    /// `root/lock`, held shared by commits and exclusively by prune.
    private let gcLockDescriptor: Int32

    /// Opens (creating if needed) the store at `root`. Removes temporary files
    /// left by writers that died (their `flock` is gone) and reconciles the
    /// metadata with the blob files on disk (a crash between rename and the
    /// metadata insert leaves a file without a row).
    public init(root: String, limits: Limits = Limits()) throws(ContentStoreError) {
        self.root = root
        self.limits = limits
        blobDirectory = root + "/blobs/sha256"
        ingestDirectory = root + "/ingest"
        do {
            for directory in [root, root + "/blobs", blobDirectory, ingestDirectory] {
                _ = try Syscall.attempt("mkdir", path: directory, tolerating: [EEXIST]) { mkdir(directory, 0o700) }
            }
            let lockPath = root + "/lock"
            gcLockDescriptor = try Syscall.run("open", path: lockPath) {
                open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            }
        } catch {
            throw .system(error)
        }
        do {
            database = try Database(path: root + "/metadata.sqlite")
            try database.execute("""
                CREATE TABLE IF NOT EXISTS blobs (
                    digest TEXT PRIMARY KEY, size INTEGER NOT NULL, created INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS tags (
                    name TEXT PRIMARY KEY, digest TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS refs (
                    parent TEXT NOT NULL, child TEXT NOT NULL, PRIMARY KEY (parent, child));
                CREATE INDEX IF NOT EXISTS refs_child ON refs (child);
                CREATE INDEX IF NOT EXISTS tags_digest ON tags (digest);
                """)
        } catch {
            Syscall.close(gcLockDescriptor)
            throw .database(error)
        }
        try removeAbandonedIngests()
        try reconcile()
    }

    deinit {
        Syscall.close(gcLockDescriptor)
    }

    // MARK: Blobs

    /// The file holding `digest`'s bytes (which may not exist).
    public func path(for digest: Digest) -> String {
        blobDirectory + "/" + digest.hex
    }

    /// Whether the blob is stored.
    public func contains(_ digest: Digest) -> Bool {
        var info = stat()
        return lstat(path(for: digest), &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// The stored blob's size in bytes.
    public func size(of digest: Digest) throws(ContentStoreError) -> Int64 {
        var info = stat()
        let blobPath = path(for: digest)
        let outcome: (result: Int32, errno: Int32)
        do {
            outcome = try Syscall.attempt("stat", path: blobPath, tolerating: [ENOENT]) { lstat(blobPath, &info) }
        } catch {
            throw .system(error)
        }
        if outcome.errno == ENOENT { throw .blobNotFound(digest) }
        return Int64(info.st_size)
    }

    /// Opens the blob for reading; the caller owns (and closes) the descriptor.
    public func openBlob(_ digest: Digest) throws(ContentStoreError) -> Int32 {
        let blobPath = path(for: digest)
        do {
            let outcome = try Syscall.attempt("open", path: blobPath, tolerating: [ENOENT]) {
                open(blobPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            }
            if outcome.errno == ENOENT { throw ContentStoreError.blobNotFound(digest) }
            return outcome.result
        } catch let error as ContentStoreError {
            throw error
        } catch {
            throw .system(error as! SystemError)
        }
    }

    /// Reads a whole blob into memory, refusing blobs over `maximumBytes`
    /// before reading (for manifests and configs).
    public func read(_ digest: Digest, maximumBytes: Int64) throws(ContentStoreError) -> [UInt8] {
        let size = try size(of: digest)
        if size > maximumBytes { throw .tooLarge(expected: digest, limitBytes: maximumBytes) }
        let descriptor = try openBlob(digest)
        defer { Syscall.close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var offset = 0
        do {
            while offset < bytes.count {
                let count = try bytes.withUnsafeMutableBytes { buffer in
                    try Syscall.read(descriptor, UnsafeMutableRawBufferPointer(rebasing: buffer[offset...]), path: path(for: digest))
                }
                if count == 0 { break }
                offset += count
            }
        } catch {
            throw Self.wrap(error)
        }
        guard offset == bytes.count else {
            throw .sizeMismatch(expected: digest, expectedBytes: size, actualBytes: Int64(offset))
        }
        return bytes
    }

    /// Starts writing a blob. With `expected`, the commit fails unless the bytes
    /// hash to it; with `expectedBytes`, unless exactly that many arrive.
    public func makeWriter(expected: Digest? = nil, expectedBytes: Int64? = nil) throws(ContentStoreError) -> BlobWriter {
        if let expectedBytes, expectedBytes > limits.maximumBlobBytes {
            throw .tooLarge(expected: expected, limitBytes: limits.maximumBlobBytes)
        }
        return try BlobWriter(store: self, expected: expected, expectedBytes: expectedBytes,
                              limitBytes: limits.maximumBlobBytes)
    }

    /// Stores `bytes` and returns their digest (verified against `expected` if given).
    @discardableResult
    public func write(_ bytes: [UInt8], expected: Digest? = nil) throws(ContentStoreError) -> Digest {
        let writer = try makeWriter(expected: expected, expectedBytes: Int64(bytes.count))
        try writer.write(bytes)
        return try writer.commit()
    }

    /// Stores the contents of the file at `sourcePath`, streaming.
    @discardableResult
    public func write(contentsOf sourcePath: String, expected: Digest? = nil) throws(ContentStoreError) -> Digest {
        let descriptor: Int32
        do {
            descriptor = try Syscall.run("open", path: sourcePath) { open(sourcePath, O_RDONLY | O_CLOEXEC) }
        } catch {
            throw .system(error)
        }
        defer { Syscall.close(descriptor) }
        let writer = try makeWriter(expected: expected)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count: Int
            do {
                count = try Syscall.read(descriptor, buffer, path: sourcePath)
            } catch {
                throw .system(error)
            }
            if count == 0 { break }
            try writer.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
        return try writer.commit()
    }

    /// Called by ``BlobWriter/commit()`` once the temporary file is verified
    /// and fsynced: renames it into place, fsyncs the directory and records
    /// the blob.
    func install(temporaryPath: String, digest: Digest, sizeBytes: Int64) throws(ContentStoreError) {
        let finalPath = path(for: digest)
        do {
            try Syscall.run("flock(LOCK_SH)", path: root + "/lock") { flock(gcLockDescriptor, LOCK_SH) }
            defer { _ = flock(gcLockDescriptor, LOCK_UN) }
            // rename replaces atomically: if a racing writer installed the same
            // digest first, its file and ours hold the same verified bytes.
            try Syscall.run("rename", path: finalPath) { rename(temporaryPath, finalPath) }
            try Self.syncDirectory(blobDirectory)
            try withDatabase { database throws in
                try database.withStatement("INSERT OR IGNORE INTO blobs (digest, size, created) VALUES (?1, ?2, ?3)") { statement in
                    try statement.bind(digest.description, at: 1)
                    try statement.bind(sizeBytes, at: 2)
                    try statement.bind(Int64(time(nil)), at: 3)
                    try statement.run()
                }
            }
        } catch let error as SystemError {
            throw .system(error)
        } catch let error as ContentStoreError {
            throw error
        } catch {
            throw Self.wrap(error)
        }
    }

    // MARK: Tags and references

    /// Points `name` at `digest` (a manifest or index), replacing what it named before.
    public func tag(_ name: String, to digest: Digest) throws(ContentStoreError) {
        try Self.validateTag(name)
        guard contains(digest) else { throw .blobNotFound(digest) }
        try withDatabase { database throws in
            try database.withStatement("INSERT OR REPLACE INTO tags (name, digest) VALUES (?1, ?2)") { statement in
                try statement.bind(name, at: 1)
                try statement.bind(digest.description, at: 2)
                try statement.run()
            }
        }
    }

    /// The digest `name` points at, or nil.
    public func resolve(tag name: String) throws(ContentStoreError) -> Digest? {
        let text: String? = try withDatabase { database throws in
            try database.withStatement("SELECT digest FROM tags WHERE name = ?1") { statement in
                try statement.bind(name, at: 1)
                return try statement.step() ? statement.text(at: 0) : nil
            }
        }
        guard let text else { return nil }
        do {
            return try Digest(parsing: text)
        } catch {
            preconditionFailure("metadata holds an invalid digest for tag \(name): \(error)")
        }
    }

    /// Removes a tag; returns whether it existed. The blobs stay until ``prune(minimumAgeSeconds:)``.
    @discardableResult
    public func removeTag(_ name: String) throws(ContentStoreError) -> Bool {
        try withDatabase { database throws in
            try database.withStatement("DELETE FROM tags WHERE name = ?1") { statement in
                try statement.bind(name, at: 1)
                try statement.run()
            }
            return (try database.scalarInt64("SELECT changes()") ?? 0) > 0
        }
    }

    /// Every tag and the digest it names, sorted by name.
    public func tags() throws(ContentStoreError) -> [(name: String, digest: Digest)] {
        let rows: [(String, String)] = try withDatabase { database throws in
            try database.withStatement("SELECT name, digest FROM tags ORDER BY name") { statement in
                var rows: [(String, String)] = []
                while try statement.step() {
                    rows.append((statement.text(at: 0) ?? "", statement.text(at: 1) ?? ""))
                }
                return rows
            }
        }
        return rows.map { (name: $0.0, digest: try! Digest(parsing: $0.1)) }
    }

    /// Records that `parent` (a manifest or index) refers to `children`
    /// (config, layers, manifests), so they live as long as `parent` does.
    /// All must be stored already.
    public func addReferences(from parent: Digest, to children: [Digest]) throws(ContentStoreError) {
        for digest in [parent] + children where !contains(digest) {
            throw .blobNotFound(digest)
        }
        try withDatabase { database throws in
            try database.transaction {
                for child in children {
                    try database.withStatement("INSERT OR IGNORE INTO refs (parent, child) VALUES (?1, ?2)") { statement in
                        try statement.bind(parent.description, at: 1)
                        try statement.bind(child.description, at: 2)
                        try statement.run()
                    }
                }
            }
        }
    }

    /// How many tags and parent blobs refer to `digest`. A blob with a count
    /// of zero is garbage unless it is itself referenced by nothing but is
    /// about to be tagged (see ``prune(minimumAgeSeconds:)``).
    public func referenceCount(of digest: Digest) throws(ContentStoreError) -> Int {
        try withDatabase { database throws in
            var count = 0
            for sql in ["SELECT COUNT(*) FROM tags WHERE digest = ?1", "SELECT COUNT(*) FROM refs WHERE child = ?1"] {
                count += try database.withStatement(sql) { statement in
                    try statement.bind(digest.description, at: 1)
                    _ = try statement.step()
                    return Int(statement.int64(at: 0))
                }
            }
            return count
        }
    }

    /// Every stored blob's digest, sorted.
    public func blobs() throws(ContentStoreError) -> [Digest] {
        let texts: [String] = try withDatabase { database throws in
            try database.withStatement("SELECT digest FROM blobs ORDER BY digest") { statement in
                var texts: [String] = []
                while try statement.step() { texts.append(statement.text(at: 0) ?? "") }
                return texts
            }
        }
        return texts.map { try! Digest(parsing: $0) }
    }

    /// What ``prune(minimumAgeSeconds:)`` removed.
    public struct PruneReport: Sendable, Equatable {
        public var removed: [Digest]
        public var reclaimedBytes: Int64
    }

    /// Removes every blob not reachable from a tag through references
    /// (mark and sweep, so reference cycles cannot keep garbage alive).
    /// Blobs written less than `minimumAgeSeconds` ago are spared, so that a
    /// pull that has stored its layers but not yet tagged its manifest keeps them.
    @discardableResult
    public func prune(minimumAgeSeconds: Int64 = 0) throws(ContentStoreError) -> PruneReport {
        do {
            try Syscall.run("flock(LOCK_EX)", path: root + "/lock") { flock(gcLockDescriptor, LOCK_EX) }
        } catch {
            throw .system(error)
        }
        defer { _ = flock(gcLockDescriptor, LOCK_UN) }
        let cutoff = Int64(time(nil)) - minimumAgeSeconds
        let swept: [(String, Int64)] = try withDatabase { database throws in
            try database.transaction {
                // Mark: everything reachable from a tag.
                try database.execute("""
                    CREATE TEMP TABLE IF NOT EXISTS marked (digest TEXT PRIMARY KEY);
                    DELETE FROM marked;
                    INSERT OR IGNORE INTO marked
                        WITH RECURSIVE reach(digest) AS (
                            SELECT digest FROM tags
                            UNION SELECT refs.child FROM refs JOIN reach ON refs.parent = reach.digest)
                        SELECT digest FROM reach;
                    """)
                var swept: [(String, Int64)] = []
                try database.withStatement("""
                    SELECT digest, size FROM blobs WHERE digest NOT IN (SELECT digest FROM marked) AND created <= ?1
                    ORDER BY digest
                    """) { statement in
                    try statement.bind(cutoff, at: 1)
                    while try statement.step() { swept.append((statement.text(at: 0) ?? "", statement.int64(at: 1))) }
                }
                for (digest, _) in swept {
                    for sql in ["DELETE FROM blobs WHERE digest = ?1", "DELETE FROM refs WHERE parent = ?1"] {
                        try database.withStatement(sql) { statement in
                            try statement.bind(digest, at: 1)
                            try statement.run()
                        }
                    }
                }
                try database.execute("DELETE FROM marked")
                return swept
            }
        }
        // Rows go first: a crash here leaves files without rows, which the
        // next open records again and the next prune removes.
        var report = PruneReport(removed: [], reclaimedBytes: 0)
        for (text, size) in swept {
            let digest = try! Digest(parsing: text)
            let blobPath = path(for: digest)
            do {
                _ = try Syscall.attempt("unlink", path: blobPath, tolerating: [ENOENT]) { unlink(blobPath) }
            } catch {
                throw .system(error)
            }
            report.removed.append(digest)
            report.reclaimedBytes += size
        }
        if !swept.isEmpty {
            do { try Self.syncDirectory(blobDirectory) } catch { throw .system(error) }
        }
        return report
    }

    // MARK: Recovery

    /// Removes temporary files whose writer is gone. A live writer holds an
    /// exclusive `flock` on its file, so only abandoned files can be locked here.
    private func removeAbandonedIngests() throws(ContentStoreError) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: ingestDirectory)
        } catch {
            throw .system(SystemError(call: "opendir", errno: EIO, path: ingestDirectory))
        }
        for name in names {
            let filePath = ingestDirectory + "/" + name
            let descriptor = open(filePath, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
            if descriptor < 0 { continue }
            defer { Syscall.close(descriptor) }
            if flock(descriptor, LOCK_EX | LOCK_NB) == 0 {
                _ = unlink(filePath)
            }
        }
    }

    /// Makes the metadata agree with the blob files: a file without a row
    /// (crash after rename) gets a row; a row without a file loses it.
    private func reconcile() throws(ContentStoreError) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: blobDirectory)) ?? []
        var onDisk: [String: Int64] = [:]
        for name in names {
            guard let digest = try? Digest(parsing: "sha256:" + name) else { continue }
            var info = stat()
            if lstat(path(for: digest), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                onDisk[digest.description] = Int64(info.st_size)
            }
        }
        let recorded = Set(try blobs().map(\.description))
        try withDatabase { database throws in
            try database.transaction {
                for (digest, size) in onDisk.sorted(by: { $0.key < $1.key }) where !recorded.contains(digest) {
                    try database.withStatement("INSERT OR IGNORE INTO blobs (digest, size, created) VALUES (?1, ?2, ?3)") { statement in
                        try statement.bind(digest, at: 1)
                        try statement.bind(size, at: 2)
                        try statement.bind(Int64(time(nil)), at: 3)
                        try statement.run()
                    }
                }
                for digest in recorded.sorted() where onDisk[digest] == nil {
                    try database.withStatement("DELETE FROM blobs WHERE digest = ?1") { statement in
                        try statement.bind(digest, at: 1)
                        try statement.run()
                    }
                }
            }
        }
    }

    // MARK: Helpers

    static func syncDirectory(_ directory: String) throws(SystemError) {
        let descriptor = try Syscall.run("open", path: directory) { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { Syscall.close(descriptor) }
        try Syscall.run("fsync", path: directory) { fsync(descriptor) }
    }

    static func validateTag(_ name: String) throws(ContentStoreError) {
        if name.isEmpty { throw .invalidTag(name, reason: "a tag cannot be empty") }
        if name.utf8.count > maximumTagBytes {
            throw .invalidTag(name, reason: "longer than \(maximumTagBytes) bytes")
        }
        if name.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            throw .invalidTag(name, reason: "tags cannot contain spaces or control characters")
        }
    }

    private func withDatabase<T>(_ body: (Database) throws -> T) throws(ContentStoreError) -> T {
        databaseLock.lock()
        defer { databaseLock.unlock() }
        do {
            return try body(database)
        } catch {
            throw Self.wrap(error)
        }
    }

    static func wrap(_ error: any Error) -> ContentStoreError {
        switch error {
        case let error as ContentStoreError: return error
        case let error as SQLiteError: return .database(error)
        case let error as SystemError: return .system(error)
        default: preconditionFailure("unexpected error in the content store: \(error)")
        }
    }
}

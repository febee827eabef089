import Posix
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One blob being written into a ``ContentStore``: a temporary file under
/// `root/ingest/`, hashed as bytes arrive. ``commit()`` verifies, fsyncs and
/// installs it; ``abort()`` (or dropping the writer) removes it.
///
/// The writer holds an exclusive `flock` on its temporary file so that a
/// store opened later can tell an abandoned file (crashed writer) from a live one.
/// Not thread-safe: one producer feeds one writer.
public final class BlobWriter {
    private let store: ContentStore
    public let expected: Digest?
    public let expectedBytes: Int64?
    private let limitBytes: Int64
    private let temporaryPath: String
    private var descriptor: Int32
    private let hasher = SHA256Hasher()
    /// Bytes accepted so far.
    public private(set) var writtenBytes: Int64 = 0
    private var done = false
    /// The digest once ``seal()`` verified and synced the bytes.
    private var sealed: Digest?

    init(store: ContentStore, expected: Digest?, expectedBytes: Int64?, limitBytes: Int64) throws(ContentStoreError) {
        self.store = store
        self.expected = expected
        self.expectedBytes = expectedBytes
        self.limitBytes = limitBytes
        temporaryPath = store.ingestDirectory + "/" + UUID().uuidString.lowercased() + ".tmp"
        let path = temporaryPath
        do {
            descriptor = try Syscall.run("open", path: path) {
                open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
            }
            try Syscall.run("flock(LOCK_EX)", path: path) { [descriptor] in flock(descriptor, LOCK_EX) }
        } catch {
            throw .system(error)
        }
    }

    deinit {
        if !done { abort() }
    }

    /// Appends bytes. Fails (and removes the temporary file) as soon as the
    /// blob grows past the announced size or the limit.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(ContentStoreError) {
        precondition(!done && sealed == nil, "BlobWriter.write after seal, commit or abort")
        let total = writtenBytes + Int64(bytes.count)
        if let expectedBytes, total > expectedBytes {
            abort()
            throw .sizeMismatch(expected: expected, expectedBytes: expectedBytes, actualBytes: total)
        }
        if total > limitBytes {
            abort()
            throw .tooLarge(expected: expected, limitBytes: limitBytes)
        }
        hasher.update(bytes)
        do {
            try Syscall.writeAll(descriptor, bytes, path: temporaryPath)
        } catch {
            abort()
            throw .system(error)
        }
        writtenBytes = total
    }

    public func write(_ bytes: [UInt8]) throws(ContentStoreError) {
        do {
            try bytes.withUnsafeBytes { buffer in try write(buffer) }
        } catch {
            throw ContentStore.wrap(error)
        }
    }

    /// Verifies size and digest and fsyncs, without installing: the digest is
    /// known and the bytes durable, and ``commit()`` installs them later (an
    /// archive load checks every member before it installs any). Returns the digest.
    @discardableResult
    public func seal() throws(ContentStoreError) -> Digest {
        precondition(!done, "BlobWriter.seal after commit or abort")
        if let sealed { return sealed }
        let actual = hasher.finish()
        if let expectedBytes, writtenBytes != expectedBytes {
            abort()
            throw .sizeMismatch(expected: expected, expectedBytes: expectedBytes, actualBytes: writtenBytes)
        }
        if let expected, expected != actual {
            abort()
            throw .digestMismatch(expected: expected, actual: actual, sizeBytes: writtenBytes)
        }
        do {
            try Syscall.run("fsync", path: temporaryPath) { fsync(descriptor) }
        } catch {
            abort()
            throw .system(error)
        }
        sealed = actual
        return actual
    }

    /// Opens the sealed bytes for reading (the caller closes the descriptor).
    public func openSealed() throws(ContentStoreError) -> Int32 {
        precondition(sealed != nil && !done, "BlobWriter.openSealed needs a sealed, uninstalled blob")
        let path = temporaryPath
        do {
            return try Syscall.run("open", path: path) { open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) }
        } catch {
            throw .system(error)
        }
    }

    /// Verifies size and digest, fsyncs, renames into place and records the
    /// blob. On any mismatch the temporary file is removed and nothing is stored.
    @discardableResult
    public func commit() throws(ContentStoreError) -> Digest {
        let actual = try seal()
        do {
            try store.install(temporaryPath: temporaryPath, digest: actual, sizeBytes: writtenBytes)
        } catch {
            abort()
            throw error
        }
        // The rename consumed the temporary name; closing releases the flock.
        done = true
        Syscall.close(descriptor)
        return actual
    }

    /// Discards the blob: closes and removes the temporary file.
    public func abort() {
        guard !done else { return }
        done = true
        _ = unlink(temporaryPath)
        Syscall.close(descriptor)
    }
}

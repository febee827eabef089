import Posix
import Storage

/// What can go wrong in the ``ContentStore``, with what to do about it.
public enum ContentStoreError: Error, CustomStringConvertible, Sendable {
    /// The bytes written do not hash to the digest they were announced as.
    /// Nothing was stored.
    case digestMismatch(expected: Digest, actual: Digest, sizeBytes: Int64)
    /// The bytes written are fewer or more than announced (a truncated or
    /// overlong download). Nothing was stored.
    case sizeMismatch(expected: Digest?, expectedBytes: Int64, actualBytes: Int64)
    /// A blob exceeds the store's (or the caller's) size limit. Nothing was stored.
    case tooLarge(expected: Digest?, limitBytes: Int64)
    /// No blob with this digest is in the store.
    case blobNotFound(Digest)
    /// A tag name the store refuses.
    case invalidTag(String, reason: String)
    /// A system call failed (disk full, permissions, ...).
    case system(SystemError)
    /// The metadata database failed.
    case database(SQLiteError)

    public var description: String {
        switch self {
        case let .digestMismatch(expected, actual, size):
            return "content digest mismatch: expected \(expected), got \(actual) over \(size) bytes; "
                + "the source sent different bytes than announced (corrupt or tampered download): nothing was stored, fetch it again"
        case let .sizeMismatch(expected, expectedBytes, actualBytes):
            let name = expected.map { " for \($0)" } ?? ""
            return "size mismatch\(name): expected \(expectedBytes) bytes, got \(actualBytes) "
                + "(truncated or overlong transfer): nothing was stored, fetch it again"
        case let .tooLarge(expected, limit):
            let name = expected.map { " \($0)" } ?? ""
            return "blob\(name) exceeds the size limit of \(limit) bytes: nothing was stored; "
                + "raise ContentStore.Limits.maximumBlobBytes if the image is trusted"
        case let .blobNotFound(digest):
            return "blob \(digest) is not in the content store: pull or import the image that holds it"
        case let .invalidTag(name, reason):
            return "invalid tag \"\(name.prefix(300))\": \(reason)"
        case let .system(error):
            return "content store: \(error)"
        case let .database(error):
            return "content store metadata: \(error)"
        }
    }
}

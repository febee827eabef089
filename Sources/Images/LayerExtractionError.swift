import Posix
/// Why a layer could not be read or extracted. Extraction stops at the first
/// error; the target directory then holds a partial layer and must be
/// discarded (the extractor never writes outside it, even on error).
public enum LayerExtractionError: Error, CustomStringConvertible, Sendable {
    /// A name that would leave the target directory (`..` past the root), or
    /// one that cannot name a file (NUL byte, empty component rules).
    case unsafePath(entry: String, reason: String)
    /// The archive ends inside a header or a member's data.
    case truncated(entry: String?, reason: String)
    /// A header that is not valid tar.
    case malformedHeader(offset: Int64, reason: String)
    /// A member type or feature Shoal does not extract (sparse files, ...).
    case unsupportedEntry(entry: String, reason: String)
    /// A hard link whose target is not (yet) in the layer.
    case hardLinkTargetMissing(entry: String, target: String)
    /// A parent directory of an entry is a symbolic link, and the resolver in
    /// use refuses to follow links (the `openat2` resolver follows them inside the root instead).
    case symlinkInPath(entry: String)
    /// A limit on header sizes was exceeded.
    case limitExceeded(entry: String?, what: String, limitBytes: Int)
    /// The uncompressed layer does not hash to the config's diff ID.
    case diffIDMismatch(expected: Digest, actual: Digest)
    /// The gzip stream is corrupt, or the compression is not supported.
    case compression(String)
    /// A system call failed while extracting `entry`.
    case system(SystemError, entry: String?)

    public var description: String {
        switch self {
        case let .unsafePath(entry, reason):
            return "refusing tar entry \"\(entry.prefix(300))\": \(reason); the layer is malformed or hostile, do not use it"
        case let .truncated(entry, reason):
            let subject = entry.map { " in \"\($0.prefix(300))\"" } ?? ""
            return "truncated layer\(subject): \(reason); fetch the layer again"
        case let .malformedHeader(offset, reason):
            return "malformed tar header at byte \(offset): \(reason); the layer is corrupt, fetch it again"
        case let .unsupportedEntry(entry, reason):
            return "cannot extract \"\(entry.prefix(300))\": \(reason)"
        case let .hardLinkTargetMissing(entry, target):
            return "hard link \"\(entry.prefix(300))\" points at \"\(target.prefix(300))\", which is not in the layer "
                + "(links are resolved inside the image root, never on the host)"
        case let .symlinkInPath(entry):
            return "refusing \"\(entry.prefix(300))\": a parent directory is a symbolic link and this kernel lacks openat2 "
                + "to follow it safely inside the root"
        case let .limitExceeded(entry, what, limit):
            let subject = entry.map { " in \"\($0.prefix(300))\"" } ?? ""
            return "\(what)\(subject) exceeds \(limit) bytes; the layer is malformed or hostile"
        case let .diffIDMismatch(expected, actual):
            return "layer diff ID mismatch: the image config says \(expected), the uncompressed layer is \(actual); "
                + "discard the extracted directory and fetch the image again"
        case let .compression(reason):
            return "layer decompression failed: \(reason)"
        case let .system(error, entry):
            let subject = entry.map { " while extracting \"\($0.prefix(300))\"" } ?? ""
            return "\(error)\(subject)"
        }
    }
}

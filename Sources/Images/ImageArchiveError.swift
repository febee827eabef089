import Posix

/// Why `shoal image save` or `shoal image load` failed. A failed save leaves
/// no output file; a failed load leaves the content store as it was.
public enum ImageArchiveError: Error, CustomStringConvertible, Sendable {
    /// The file is not a tar archive, or it is corrupt or cut short.
    case malformedArchive(path: String, LayerExtractionError)
    /// A tar, but neither an OCI image layout nor a docker-archive.
    case unknownFormat(path: String, members: [String])
    /// A member the format requires is missing (e.g. a layer a manifest lists).
    case missingMember(String, neededBy: String)
    /// A member's bytes do not hash to the digest its name or a descriptor gives.
    case digestMismatch(member: String, expected: Digest, actual: Digest)
    /// A member's size differs from the size a descriptor gives.
    case sizeMismatch(member: String, expectedBytes: Int64, actualBytes: Int64)
    /// A layer whose uncompressed digest is not the config's diff ID.
    case diffIDMismatch(member: String, expected: Digest, actual: Digest)
    /// A JSON document of the archive (index.json, manifest.json, a manifest or config) is invalid.
    case invalidDocument(member: String, reason: String)
    /// An image name in the archive (or given to save) that is not a valid reference.
    case invalidName(String, reason: String)
    /// A blob could not be read while writing an archive.
    case unreadableBlob(member: String, LayerExtractionError)
    /// A blob delivered fewer bytes than its size while writing an archive.
    case shortBlob(member: String, expectedBytes: Int64, actualBytes: Int64)
    /// The archive holds more small members than Shoal keeps in memory while loading.
    case tooManySmallMembers(limitBytes: Int64)
    /// Nothing to save, or an image the store cannot save as asked.
    case unsupported(String)
    case store(ContentStoreError)
    case system(SystemError)

    public var description: String {
        switch self {
        case let .malformedArchive(path, error):
            return "\(path) is not a readable image archive: \(error). Give a tar written by `shoal image save`, `docker save` "
                + "or `skopeo copy ... oci-archive:FILE` / `docker-archive:FILE`; nothing was loaded"
        case let .unknownFormat(path, members):
            let shown = members.prefix(8).joined(separator: ", ")
            return "\(path) is a tar archive but not an image archive: it has neither index.json and oci-layout (OCI image layout) "
                + "nor manifest.json (docker-archive); its first members are: \(shown.isEmpty ? "none" : shown); nothing was loaded"
        case let .missingMember(member, neededBy):
            return "the archive lacks \(member), which \(neededBy) needs: the archive is incomplete (cut short?); nothing was loaded"
        case let .digestMismatch(member, expected, actual):
            return "\(member) should hash to \(expected) but hashes to \(actual): the archive is corrupt or was altered; nothing was loaded"
        case let .sizeMismatch(member, expected, actual):
            return "\(member) should be \(expected) bytes but is \(actual): the archive is corrupt; nothing was loaded"
        case let .diffIDMismatch(member, expected, actual):
            return "layer \(member) uncompresses to \(actual), but the image config lists diff ID \(expected): "
                + "the archive is corrupt or was altered; nothing was loaded"
        case let .invalidDocument(member, reason):
            return "\(member) in the archive is invalid: \(reason); nothing was loaded"
        case let .invalidName(name, reason):
            return "image name \(String(name.prefix(300)).debugDescription) is not usable: \(reason)"
        case let .unreadableBlob(member, error):
            return "cannot read the blob for \(member): \(error); the store may be damaged, pull or import the image again"
        case let .shortBlob(member, expected, actual):
            return "the blob for \(member) holds \(actual) bytes, not \(expected): the store is damaged, pull or import the image again"
        case let .tooManySmallMembers(limit):
            return "the archive holds more than \(limit) bytes in small members, more than a load keeps in memory; nothing was loaded"
        case let .unsupported(reason):
            return reason
        case let .store(error):
            return "\(error)"
        case let .system(error):
            return "\(error)"
        }
    }
}

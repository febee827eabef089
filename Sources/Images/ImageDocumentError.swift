/// A manifest, index or config Shoal refuses, and why.
public enum ImageDocumentError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Larger than the limit: refused before decoding.
    case tooLarge(kind: String, sizeBytes: Int, limitBytes: Int)
    /// Not valid JSON for this kind of document.
    case malformed(kind: String, reason: String)
    /// A media type Shoal does not handle here.
    case unsupportedMediaType(String, expected: [String])
    /// `schemaVersion` other than 2.
    case unsupportedSchemaVersion(Int)
    /// The index has no manifest for the wanted platform.
    case platformNotFound(wanted: Platform, available: [String])
    /// The content does not hash to the digest it was fetched by.
    case digestMismatch(expected: Digest, actual: Digest)

    public var description: String {
        switch self {
        case let .tooLarge(kind, size, limit):
            return "\(kind) is \(size) bytes, over the \(limit)-byte limit: refused without parsing it; "
                + "a legitimate \(kind) is far smaller, so the source is broken or hostile"
        case let .malformed(kind, reason):
            return "malformed \(kind): \(reason)"
        case let .unsupportedMediaType(type, expected):
            if type == MediaType.dockerManifestSchema1 || type == MediaType.dockerManifestSchema1Signed {
                return "Docker schema 1 manifests (\(type)) are not supported: push the image again with a current Docker or skopeo, which writes schema 2"
            }
            return "unsupported media type \"\(type.prefix(200))\"; expected one of: \(expected.sorted().joined(separator: ", "))"
        case let .unsupportedSchemaVersion(version):
            return "unsupported schemaVersion \(version): Shoal reads schema version 2 (OCI and Docker schema 2)"
        case let .platformNotFound(wanted, available):
            let list = available.isEmpty ? "none labelled" : available.joined(separator: ", ")
            return "the image has no manifest for \(wanted) (available: \(list)); pull an image built for \(wanted)"
        case let .digestMismatch(expected, actual):
            return "document digest mismatch: expected \(expected), got \(actual); the source served different bytes, refusing it"
        }
    }
}

import Posix

/// Why `commit` stored no image, with what to do about it.
public enum ImageCommitError: Error, CustomStringConvertible, Sendable {
    /// The image the container was created from is no longer in the store.
    case parentMissing(Digest)
    /// The parent's manifest or config cannot be read or decoded.
    case parentUnreadable(Digest, reason: String)
    /// Reading the layer tar the runtime wrote failed.
    case layerUnreadable(SystemError)
    /// A `--change` instruction was refused.
    case change(ImageChangeError)
    /// The content store refused a blob or the tag.
    case store(ContentStoreError)

    public var description: String {
        switch self {
        case .parentMissing(let digest):
            return "the image the container was created from (\(digest)) is no longer in the content store; "
                + "pull or load it again, or export the container's files with `shoal container export`"
        case let .parentUnreadable(digest, reason):
            return "the image the container was created from (\(digest)) cannot be read: \(reason); pull or load it again"
        case .layerUnreadable(let error):
            return "reading the container's changes failed: \(error); check the daemon's temporary directory has room"
        case .change(let error):
            return "\(error)"
        case .store(let error):
            return "storing the image failed: \(error)"
        }
    }
}

/// One entry of `diff`: a path of the container's root filesystem that its
/// writable layer added, changed or deleted (Docker's A/C/D).
public struct FilesystemChange: Codable, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        case added = "A"
        case changed = "C"
        case deleted = "D"
    }

    public var kind: Kind
    /// Absolute, inside the container.
    public var path: String

    public init(kind: Kind, path: String) {
        self.kind = kind
        self.path = path
    }

    /// `A /tmp/new`, as `docker diff` prints it.
    public var description: String { "\(kind.rawValue) \(path)" }
}

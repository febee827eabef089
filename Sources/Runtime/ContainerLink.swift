/// `--link NAME:ALIAS`: the container's /etc/hosts maps `alias` (and the
/// linked container's id and hostname) to the linked container's bridge
/// address. The linked container must be a ``NetworkMode/bridge`` container
/// of the same runtime; it is looked up when the linking container starts.
public struct ContainerLink: Codable, Equatable, Hashable, Sendable {
    /// The linked container's id (callers map names to ids).
    public var container: String
    /// The extra name; nil: only the id and hostname.
    public var alias: String?

    public init(container: String, alias: String? = nil) {
        self.container = container
        self.alias = alias
    }
}

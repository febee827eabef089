/// `POST /v1/containers/{id}/commit`: `shoal container commit` (as `docker
/// commit`): the container's writable layer becomes a new image layer on
/// top of the image it was created from.
public struct ContainerCommitRequest: Codable, Sendable, Equatable {
    /// `REPOSITORY[:TAG]` to tag the image with (`:latest` when no tag); nil: untagged.
    public var reference: String?
    /// `-m`: the history entry's comment.
    public var comment: String?
    /// `-a`: the image's author (`Name <email>`).
    public var author: String?
    /// `-c`: Dockerfile instructions applied to the new image's config
    /// (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME, HEALTHCHECK).
    public var changes: [String]?
    /// Freeze the container while its files are read (default true, as Docker).
    public var pause: Bool?

    public init(reference: String? = nil) { self.reference = reference }
}

/// The committed image: its manifest digest (the image id) and the tag given.
public struct ContainerCommitReply: Codable, Sendable, Equatable {
    public var id: String
    public var reference: String?
    /// The new layer's size, gzip-compressed and as a tar.
    public var layerBytes: Int64
    public var uncompressedBytes: Int64
}

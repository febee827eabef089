/// A single-platform image: one config and the layers to stack, bottom first
/// (OCI image manifest, or Docker schema 2 manifest).
public struct ImageManifest: Codable, Hashable, Sendable {
    public var schemaVersion: Int
    /// Optional in OCI (umoci omits it), required in Docker schema 2.
    public var mediaType: String?
    public var artifactType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(mediaType: String = MediaType.ociManifest, config: Descriptor, layers: [Descriptor],
                annotations: [String: String]? = nil) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
        self.annotations = annotations
    }
}

/// A multi-platform image: one manifest per platform (OCI image index, or
/// Docker manifest list).
public struct ImageIndex: Codable, Hashable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var manifests: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(mediaType: String = MediaType.ociIndex, manifests: [Descriptor],
                annotations: [String: String]? = nil) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.manifests = manifests
        self.annotations = annotations
    }

    /// The manifest for `platform`: the first image manifest whose platform
    /// matches (an entry without a variant matches any wanted variant only when
    /// nothing more specific does). Entries that are not image manifests
    /// (attestations, nested indexes) are skipped.
    public func manifest(for platform: Platform) throws(ImageDocumentError) -> Descriptor {
        let candidates = manifests.filter { MediaType.manifests.contains($0.mediaType) }
        if let exact = candidates.first(where: { $0.platform.map { $0.matches(platform) } ?? false }) {
            return exact
        }
        if platform.variant != nil,
           let loose = candidates.first(where: { $0.platform.map {
               $0.os == platform.os && $0.architecture == platform.architecture && $0.variant == nil } ?? false }) {
            return loose
        }
        let available = candidates.compactMap { $0.platform?.description }.sorted()
        throw .platformNotFound(wanted: platform, available: available)
    }
}

/// The two tar layouts `shoal image save` writes and `shoal image load` reads
/// (the names skopeo gives the same formats).
public enum ImageArchiveFormat: String, Sendable, CaseIterable {
    /// An OCI image layout in a tar: `oci-layout`, `index.json`,
    /// `blobs/sha256/<hex>`. Blobs are kept as stored (compressed layers stay compressed).
    case ociArchive = "oci-archive"
    /// `docker save`'s layout: `manifest.json` (config and layer paths and
    /// the image's names), `repositories`, the config as `<hex>.json` and each
    /// layer as an uncompressed `<diff ID hex>.tar`.
    case dockerArchive = "docker-archive"

    /// `oci-archive`/`oci` or `docker-archive`/`docker`.
    public init?(name: String) {
        switch name.lowercased() {
        case "oci-archive", "oci": self = .ociArchive
        case "docker-archive", "docker": self = .dockerArchive
        default: return nil
        }
    }
}

/// The media types Shoal reads and writes: OCI image-spec v1 and Docker
/// registry schema 2 (which registries and `docker push` still produce).
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let ociLayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    /// Docker schema 1 (signed JSON web signatures); refused with a clear error.
    public static let dockerManifestSchema1 = "application/vnd.docker.distribution.manifest.v1+json"
    public static let dockerManifestSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"

    /// Media types of single-platform manifests.
    public static let manifests: Set<String> = [ociManifest, dockerManifest]
    /// Media types of multi-platform indexes (manifest lists).
    public static let indexes: Set<String> = [ociIndex, dockerManifestList]
    /// Media types of image configs.
    public static let configs: Set<String> = [ociConfig, dockerConfig]
    /// Layer media types Shoal can extract, and whether they are gzip-compressed.
    public static let layers: [String: Bool] = [
        ociLayer: false, ociLayerGzip: true, ociLayerNondistributableGzip: true,
        dockerLayerGzip: true, dockerForeignLayerGzip: true,
        "application/vnd.oci.image.layer.nondistributable.v1.tar": false,
    ]
}

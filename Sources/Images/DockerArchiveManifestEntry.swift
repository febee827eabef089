/// One image in a docker-archive's `manifest.json` (the keys `docker save` writes).
struct DockerArchiveManifestEntry: Codable {
    /// The config's member name (`<hex>.json`, or `blobs/sha256/<hex>` from Docker 25 on).
    var Config: String
    /// The image's names (`busybox:latest`); absent or empty for an image saved by ID.
    var RepoTags: [String]?
    /// The uncompressed layer tars' member names, bottom first.
    var Layers: [String]
}

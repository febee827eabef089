import TestSupport
import Foundation
import HTTP
import Images
import Net
@testable import Registry
import Testing

/// Writes the image `tag` names in `store` as an OCI image layout directory
/// (what skopeo's `oci:` transport reads), with the ref name `refName`.
func writeOCILayout(from store: ContentStore, tag: String, to directory: String, refName: String) throws {
    let manager = FileManager.default
    try manager.createDirectory(atPath: directory + "/blobs/sha256", withIntermediateDirectories: true)
    try #"{"imageLayoutVersion":"1.0.0"}"#.write(toFile: directory + "/oci-layout", atomically: false, encoding: .utf8)
    let manifestDigest = try #require(try store.resolve(tag: tag))
    let manifestBytes = try store.read(manifestDigest, maximumBytes: 4 << 20)
    guard case .manifest(let manifest) = try ImageDocument.decode(manifestBytes) else { throw ImageDocumentError.malformed(kind: "manifest", reason: "not a manifest") }
    for digest in [manifestDigest, manifest.config.digest] + manifest.layers.map(\.digest) {
        try manager.copyItem(atPath: store.path(for: digest), toPath: directory + "/blobs/sha256/" + digest.hex)
    }
    let index = ImageIndex(manifests: [Descriptor(mediaType: MediaType.ociManifest, digest: manifestDigest, size: Int64(manifestBytes.count),
                                                  annotations: ["org.opencontainers.image.ref.name": refName])])
    try Data(ImageDocument.encode(index)).write(to: URL(fileURLWithPath: directory + "/index.json"))
}

/// The manifest digest an OCI layout's index.json names.
func layoutManifestDigest(_ directory: String) throws -> Digest {
    let index = try JSONDecoder().decode(ImageIndex.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/index.json")))
    return try #require(index.manifests.first?.digest)
}

/// Real peers: skopeo as a client of our registry, the CNCF distribution
/// registry as a server for our client. Skipped, with the reason, when the
/// Debian package is missing (Cluster/install-dependencies.sh installs both).
@Suite("Registry interop with real peers", .serialized, .timeLimit(.minutes(6)))
struct RegistryPeerTests {
    @Test(.enabled(if: skopeoPath != nil && busyboxPath != nil && tarPath != nil,
                   "skopeo is not installed (apt-get install -y skopeo): skipping the skopeo interop test"))
    func skopeoCopiesIntoOurRegistryAndBack() async throws {
        let registry = try RegistryFixture()
        let directory = try TemporaryDirectory()
        let source = try ContentStore(root: directory.file("source"))
        let image = try await importBusyboxImage(into: source, tag: "busybox:oci", in: directory)
        let layout = directory.file("layout")
        try writeOCILayout(from: source, tag: "busybox:oci", to: layout, refName: "latest")
        let skopeo = skopeoPath!
        let common = ["--insecure-policy"]

        // oci: layout → our registry (HEAD, POST, streamed PATCH, PUT ?digest=sha256%3A...).
        let push = try await run(skopeo, common + ["copy", "--dest-tls-verify=false",
                                                   "oci:\(layout):latest", "docker://\(registry.hostPort)/skopeo/busybox:v1"])
        #expect(push.status == 0, "skopeo push: \(push.error)")
        let tagged = try registry.store.resolve(tag: "skopeo/busybox:v1")
        #expect(tagged == image.manifest, "skopeo should keep the OCI manifest byte for byte")

        let inspect = try await run(skopeo, common + ["inspect", "--tls-verify=false", "docker://\(registry.hostPort)/skopeo/busybox:v1"])
        #expect(inspect.status == 0, "skopeo inspect: \(inspect.error)")
        #expect(inspect.output.contains(image.manifest.description))
        let tags = try await run(skopeo, common + ["list-tags", "--tls-verify=false", "docker://\(registry.hostPort)/skopeo/busybox"])
        #expect(tags.status == 0 && tags.output.contains("\"v1\""), "skopeo list-tags: \(tags.output) \(tags.error)")

        // Our registry → a fresh oci: layout; digests match end to end.
        let back = directory.file("back")
        let pull = try await run(skopeo, common + ["copy", "--src-tls-verify=false",
                                                   "docker://\(registry.hostPort)/skopeo/busybox:v1", "oci:\(back):latest"])
        #expect(pull.status == 0, "skopeo pull: \(pull.error)")
        #expect(try layoutManifestDigest(back) == image.manifest)
        let layerBack = try Data(contentsOf: URL(fileURLWithPath: back + "/blobs/sha256/" + image.layer.hex))
        #expect(Digest.of([UInt8](layerBack)) == image.layer)

        // Our client pulls what skopeo pushed.
        let destination = try ContentStore(root: directory.file("destination"))
        let pulled = try await RegistryClient().pull(try ImageReference(parsing: "\(registry.hostPort)/skopeo/busybox:v1"), into: destination)
        #expect(pulled.manifest == image.manifest)

        // A second repository: skopeo cross-mounts (or re-uploads); either way the copy must succeed.
        let mirror = try await run(skopeo, common + ["copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                                                     "docker://\(registry.hostPort)/skopeo/busybox:v1", "docker://\(registry.hostPort)/mirror/busybox:v1"])
        #expect(mirror.status == 0, "skopeo registry-to-registry copy: \(mirror.error)")
        #expect(try registry.store.resolve(tag: "mirror/busybox:v1") == image.manifest)
        await registry.stop()
    }

    @Test(.enabled(if: distributionPath != nil && busyboxPath != nil && tarPath != nil,
                   "docker-registry is not installed (apt-get install -y docker-registry): skipping the distribution interop test"))
    func ourClientAgainstTheDistributionRegistry() async throws {
        let directory = try TemporaryDirectory()
        let port = try freePort()
        let config = directory.file("config.yml")
        try """
            version: 0.1
            log:
              level: error
            storage:
              filesystem:
                rootdirectory: \(directory.file("distribution"))
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
            """.write(toFile: config, atomically: false, encoding: .utf8)
        let peer = try ChildProcess(distributionPath!, ["serve", config], logPath: directory.file("distribution.log"))
        defer { peer.stop() }
        // Wait until it answers /v2/.
        let probe = HTTPClient()
        var ready = false
        for _ in 0..<100 {
            if let response = try? await probe.exchange(.get, "http://127.0.0.1:\(port)/v2/"), response.status == 200 { ready = true; break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try #require(ready, "docker-registry did not come up: \(peer.log)")

        let source = try ContentStore(root: directory.file("source"))
        let image = try await importBusyboxImage(into: source, tag: "busybox:test", in: directory)
        let reference = try ImageReference(parsing: "127.0.0.1:\(port)/library/busybox:1")
        let client = RegistryClient()
        let pushed = try await client.push(from: source, localName: "busybox:test", to: reference)
        #expect(pushed.manifest == image.manifest)
        let destination = try ContentStore(root: directory.file("destination"))
        let pulled = try await RegistryClient().pull(reference, into: destination)
        #expect(pulled.manifest == image.manifest && pulled.layers == [image.layer])
        #expect(try destination.read(image.layer, maximumBytes: 64 << 20) == source.read(image.layer, maximumBytes: 64 << 20))

        // Chunked upload (PATCH with Content-Range, newest Location each time) to another repository.
        var chunked = RegistryClient.Configuration()
        chunked.uploadChunkBytes = 128 * 1024
        let chunkedReference = try ImageReference(parsing: "127.0.0.1:\(port)/chunked/busybox:1")
        _ = try await RegistryClient(configuration: chunked).push(from: source, localName: "busybox:test", to: chunkedReference)
        let second = try ContentStore(root: directory.file("second"))
        #expect(try await RegistryClient().pull(chunkedReference, into: second).manifest == image.manifest)
        // Cross-repository mount against distribution.
        let mountReference = try ImageReference(parsing: "127.0.0.1:\(port)/mounted/busybox:1")
        let mounted = try await client.push(from: source, localName: "busybox:test", to: mountReference)
        #expect(mounted.mountedBlobs == 2, "distribution should mount blobs this client pushed to library/busybox")

        // skopeo between the two registries: digests match end to end.
        if let skopeo = skopeoPath {
            let ours = try RegistryFixture()
            let copy = try await run(skopeo, ["--insecure-policy", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                                              "docker://127.0.0.1:\(port)/library/busybox:1", "docker://\(ours.hostPort)/from-distribution:1"])
            #expect(copy.status == 0, "skopeo copy distribution → ours: \(copy.error)")
            #expect(try ours.store.resolve(tag: "from-distribution:1") == image.manifest)
            await ours.stop()
        }
        await client.shutdown()
        peer.stop()
    }
}

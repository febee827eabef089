import TestSupport
import Foundation
@testable import Images
import Testing

let skopeoPath: String? = ["/usr/bin/skopeo"].first { FileManager.default.isExecutableFile(atPath: $0) }
let umociPath: String? = ["/usr/bin/umoci", "/usr/local/bin/umoci"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// Image archives against the tools that define them: skopeo reads what
/// `shoal image save` writes and writes what `shoal image load` reads;
/// an image umoci builds in an OCI layout loads and extracts.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ImageArchivePeerTests {
    @Test(.enabled(if: skopeoPath != nil, "skopeo is not installed (apt-get install -y skopeo): skipping the skopeo archive interop test"))
    func skopeoReadsOurArchivesAndWritesOnesWeLoad() throws {
        let fixture = try ImageArchiveTests.Fixture()
        let skopeo = skopeoPath!
        let oci = try fixture.save(["plain:1", "127.0.0.1:5000/web/gz:1"], format: .ociArchive, as: "ours-oci.tar")
        let docker = try fixture.save(["127.0.0.1:5000/web/gz:1"], format: .dockerArchive, as: "ours-docker.tar")

        // skopeo reads ours: OCI to OCI keeps the manifest byte for byte; the docker-archive's layer is the diff ID.
        let copied = fixture.directory.file("skopeo-layout")
        try run(skopeo, ["--insecure-policy", "copy", "oci-archive:\(oci):127.0.0.1:5000/web/gz:1", "oci:\(copied):copy"])
        let index = try JSONDecoder().decode(ImageIndex.self, from: Data(contentsOf: URL(fileURLWithPath: copied + "/index.json")))
        #expect(index.manifests.map(\.digest) == [fixture.gzipped.manifest])
        let inspected = try run(skopeo, ["--insecure-policy", "inspect", "--raw", "docker-archive:\(docker)"])
        #expect(inspected.contains(fixture.gzipped.diffID.description), "skopeo should see the uncompressed layer: \(inspected)")
        let fromDocker = fixture.directory.file("skopeo-from-docker")
        try run(skopeo, ["--insecure-policy", "copy", "docker-archive:\(docker)", "oci:\(fromDocker):copy"])
        // skopeo rewrites config and compression for OCI; the diff ID stays.
        let fromDockerStore = try ContentStore(root: fixture.directory.file("from-docker-store"))
        let converted = try ImageArchiveLoader(store: fromDockerStore).load(from: fromDocker, repository: "converted")
        let (_, convertedManifest) = try #require(try? ImageArchiveTests.manifest(converted.images[0].manifest, in: fromDockerStore))
        let convertedConfig = try ImageDocument.decodeConfig(try fromDockerStore.read(convertedManifest.config.digest, maximumBytes: 1 << 20))
        #expect(convertedConfig.rootfs.diffIDs == [fixture.gzipped.diffID])

        // skopeo writes both formats; we load them, names and files intact.
        let skopeoDocker = fixture.directory.file("skopeo-docker.tar")
        let skopeoOCI = fixture.directory.file("skopeo-oci.tar")
        try run(skopeo, ["--insecure-policy", "copy", "oci-archive:\(oci):plain:1", "docker-archive:\(skopeoDocker):skopeo/plain:2"])
        try run(skopeo, ["--insecure-policy", "copy", "oci-archive:\(oci):127.0.0.1:5000/web/gz:1", "oci-archive:\(skopeoOCI):skopeo/gz:3"])
        let target = try ContentStore(root: fixture.directory.file("target"))
        let fromSkopeoDocker = try ImageArchiveLoader(store: target).load(from: skopeoDocker)
        #expect(fromSkopeoDocker.format == .dockerArchive)
        // skopeo writes the fully qualified name into RepoTags.
        #expect(fromSkopeoDocker.images.map(\.names) == [["docker.io/skopeo/plain:2"]])
        let fromSkopeoOCI = try ImageArchiveLoader(store: target).load(from: skopeoOCI)
        #expect(fromSkopeoOCI.format == .ociArchive)
        #expect(fromSkopeoOCI.images.map(\.names) == [["skopeo/gz:3"]])
        #expect(try ImageArchiveTests.extractedText(target, tag: "docker.io/skopeo/plain:2", file: "etc/motd", in: fixture.directory) == "plain image\n")
        #expect(try ImageArchiveTests.extractedText(target, tag: "skopeo/gz:3", file: "srv/run", in: fixture.directory) == "#!/bin/sh\necho gz\n")
    }

    @Test(.enabled(if: umociPath != nil, "umoci is not installed (apt-get install -y umoci; Cluster/install-dependencies.sh lists it): skipping the umoci interop test"))
    func anImageUmociBuiltLoadsAndItsLayersExtract() throws {
        let directory = try TemporaryDirectory()
        let umoci = umociPath!
        let layout = directory.file("layout")
        let bundle = directory.file("bundle")
        let manager = FileManager.default
        // Layer 1: /app/hello.txt and a symlink; then a config change; layer 2 deletes the link
        // (a whiteout) and adds /etc/hostname.
        try run(umoci, ["init", "--layout", layout])
        try run(umoci, ["new", "--image", layout + ":latest"])
        try run(umoci, ["unpack", "--image", layout + ":latest", bundle])
        try manager.createDirectory(atPath: bundle + "/rootfs/app", withIntermediateDirectories: true)
        try "hello from umoci\n".write(toFile: bundle + "/rootfs/app/hello.txt", atomically: false, encoding: .utf8)
        try manager.createSymbolicLink(atPath: bundle + "/rootfs/app/link", withDestinationPath: "hello.txt")
        try run(umoci, ["repack", "--image", layout + ":latest", bundle])
        try run(umoci, ["config", "--image", layout + ":latest", "--config.cmd", "/app/hello", "--config.env", "GREETING=hi"])
        try manager.removeItem(atPath: bundle)
        try run(umoci, ["unpack", "--image", layout + ":latest", bundle])
        try manager.removeItem(atPath: bundle + "/rootfs/app/link")
        try manager.createDirectory(atPath: bundle + "/rootfs/etc", withIntermediateDirectories: true)
        try "umoci-box\n".write(toFile: bundle + "/rootfs/etc/hostname", atomically: false, encoding: .utf8)
        try run(umoci, ["repack", "--image", layout + ":latest", bundle])

        // The layout directory loads; umoci names the image only "latest".
        let store = try ContentStore(root: directory.file("store"))
        let report = try ImageArchiveLoader(store: store).load(from: layout, repository: "umoci/app")
        #expect(report.format == .ociArchive)
        #expect(report.images.map(\.names) == [["umoci/app:latest"]])
        let manifestDigest = try #require(report.images.first?.manifest)

        // And as a tar of the layout (members named ./index.json, ./blobs/...): the same image.
        let tarball = directory.file("layout.tar")
        try run("/bin/tar", ["-C", layout, "-cf", tarball, "."])
        let second = try ContentStore(root: directory.file("second"))
        let fromTar = try ImageArchiveLoader(store: second).load(from: tarball, repository: "umoci/app")
        #expect(fromTar.images.map(\.manifest) == [manifestDigest])

        // Its layers extract to the expected files, the whiteout applied.
        let root = directory.file("rootfs")
        try manager.createDirectory(atPath: root, withIntermediateDirectories: false)
        let (manifest, config) = try ImageImporterTests.extractImage(store, tag: "umoci/app:latest", into: root)
        #expect(manifest.layers.count == 2)
        #expect(try String(contentsOfFile: root + "/app/hello.txt", encoding: .utf8) == "hello from umoci\n")
        #expect(try String(contentsOfFile: root + "/etc/hostname", encoding: .utf8) == "umoci-box\n")
        #expect(!manager.fileExists(atPath: root + "/app/link"), "layer 2's whiteout removes the link")
        #expect((try? manager.destinationOfSymbolicLink(atPath: root + "/app/link")) == nil)
        #expect(config.config?.cmd == ["/app/hello"])
        #expect(config.config?.env?.contains("GREETING=hi") == true)
        // umoci's history: repack, config (no layer), repack.
        let history = ImageHistory(manifest: manifest, manifestDigest: manifestDigest, config: config)
        #expect(history.rows.map(\.createdBy) == ["umoci repack", "umoci config", "umoci repack"])
        #expect(history.rows.map(\.emptyLayer) == [false, true, false])
    }
}

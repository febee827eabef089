import TestSupport
import Foundation
import Glibc
@testable import Images
import Testing

@Suite struct ImageImporterTests {
    /// Imports a tarball, then pulls it back out of the store the way a
    /// worker would: tag → manifest → config → layer extracted with its diff ID checked.
    static func extractImage(_ store: ContentStore, tag: String, into root: String) throws -> (ImageManifest, ImageConfig) {
        let manifestDigest = try #require(try store.resolve(tag: tag))
        let document = try ImageDocument.decode(try store.read(manifestDigest, maximumBytes: Int64(ImageDocument.maximumManifestBytes)),
                                                digest: manifestDigest)
        guard case let .manifest(manifest) = document else { throw CocoaError(.fileReadCorruptFile) }
        let config = try ImageDocument.decodeConfig(try store.read(manifest.config.digest, maximumBytes: Int64(ImageDocument.maximumConfigBytes)))
        let extractor = try LayerExtractor(rootPath: root, options: .init(mode: .flatten))
        for (layer, diffID) in zip(manifest.layers, config.rootfs.diffIDs) {
            #expect(try store.size(of: layer.digest) == layer.size)
            _ = try extractor.extract(layerAt: store.path(for: layer.digest), expectedDiffID: diffID)
        }
        return (manifest, config)
    }

    @Test func importedTarballRoundTripsThroughTheStore() throws {
        let directory = try TemporaryDirectory()
        var tar = TarBuilder()
        tar.directory("./")
        tar.directory("./bin/")
        tar.add("./bin/hello", data: Array("#!/bin/sh\necho hello\n".utf8), mode: 0o755)
        tar.symlink("./bin/hi", to: "hello")
        tar.end()
        let tarball = directory.file("rootfs.tar")
        try Data(tar.bytes).write(to: URL(fileURLWithPath: tarball))
        let store = try ContentStore(root: directory.file("store"))
        let image = try ImageImporter(store: store).importRootfs(
            tarballAt: tarball, tag: "shoal.local/hello:1",
            containerConfig: .init(env: ["PATH=/bin"], cmd: ["/bin/hello"]))
        #expect(image.layer == Digest.of(tar.bytes))
        #expect(image.diffID == Digest.of(tar.bytes))
        #expect(try store.resolve(tag: "shoal.local/hello:1") == image.manifest)
        #expect(try store.referenceCount(of: image.layer) == 1)
        #expect(try store.referenceCount(of: image.config) == 1)

        let root = directory.file("rootfs")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        let (manifest, config) = try Self.extractImage(store, tag: "shoal.local/hello:1", into: root)
        #expect(manifest.mediaType == MediaType.ociManifest)
        #expect(manifest.layers.map(\.mediaType) == [MediaType.ociLayer])
        #expect(config.architecture == "amd64" && config.os == "linux")
        #expect(config.config?.cmd == ["/bin/hello"])
        #expect(config.history?.first?.createdBy == "shoal image import")
        #expect(try String(contentsOfFile: root + "/bin/hello", encoding: .utf8) == "#!/bin/sh\necho hello\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/bin/hi") == "hello")

        // Untagged, the whole image is garbage.
        #expect(try store.removeTag("shoal.local/hello:1"))
        #expect(Set(try store.prune().removed) == [image.manifest, image.config, image.layer])
    }

    @Test(.enabled(if: busyboxPath != nil, "needs busybox-static"))
    func gzippedBusyboxRootfsImportsAndRuns() throws {
        let directory = try TemporaryDirectory()
        let rootfs = directory.file("busybox")
        try LayerExtractorComparisonTests.makeBusyboxRootfs(at: rootfs, busybox: busyboxPath!)
        let tarball = directory.file("busybox.tar")
        try run("/bin/tar", ["--numeric-owner", "-C", rootfs, "-cf", tarball, "."])
        try run("/bin/gzip", [tarball])
        let store = try ContentStore(root: directory.file("store"))
        let image = try ImageImporter(store: store).importRootfs(tarballAt: tarball + ".gz", tag: "busybox:latest")
        #expect(image.layer == Digest.of(Array(try Data(contentsOf: URL(fileURLWithPath: tarball + ".gz")))))
        let root = directory.file("root")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        let (manifest, _) = try Self.extractImage(store, tag: "busybox:latest", into: root)
        #expect(manifest.layers.map(\.mediaType) == [MediaType.ociLayerGzip])
        #expect(try run(root + "/bin/busybox", ["echo", "imported"]) == "imported\n")
    }

    @Test func refusesWhatIsNotASafeTarball() throws {
        let directory = try TemporaryDirectory()
        let store = try ContentStore(root: directory.file("store"))
        let importer = ImageImporter(store: store)

        let text = directory.file("notes.txt")
        try String(repeating: "not a tarball\n", count: 100).write(toFile: text, atomically: false, encoding: .utf8)
        #expect {
            try importer.importRootfs(tarballAt: text, tag: "bad:1")
        } throws: { error in
            guard case let .invalidTarball(path, reason)? = error as? ImageImportError else { return false }
            return path == text && reason.description.contains("checksum")
        }

        var hostile = TarBuilder()
        hostile.file("../../etc/cron.d/evil", "* * * * * root sh")
        hostile.end()
        let hostilePath = directory.file("hostile.tar")
        try Data(hostile.bytes).write(to: URL(fileURLWithPath: hostilePath))
        #expect {
            try importer.importRootfs(tarballAt: hostilePath, tag: "bad:2")
        } throws: { error in
            (error as? ImageImportError)?.description.contains("climbs above the image root") == true
        }

        #expect(throws: ImageImportError.self) {
            try importer.importRootfs(tarballAt: directory.file("missing.tar"), tag: "bad:3")
        }
        #expect(try store.tags().isEmpty)
        #expect(try store.blobs().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.file("store/ingest")).isEmpty)
    }

    @Test func sizeLimitAppliesToImports() throws {
        let directory = try TemporaryDirectory()
        let store = try ContentStore(root: directory.file("store"), limits: .init(maximumBlobBytes: 4096))
        var tar = TarBuilder()
        tar.add("big", data: [UInt8](repeating: 1, count: 10_000))
        tar.end()
        let path = directory.file("big.tar")
        try Data(tar.bytes).write(to: URL(fileURLWithPath: path))
        #expect {
            try ImageImporter(store: store).importRootfs(tarballAt: path, tag: "big:1")
        } throws: { error in
            if case .store(.tooLarge)? = error as? ImageImportError { return true }
            return false
        }
        #expect(try store.blobs().isEmpty)
    }
}

import TestSupport
import Foundation
import Glibc
@testable import Images
import Testing

/// `commit` on the store's side: a changes tar on top of an imported image.
@Suite struct ImageCommitterTests {
    /// An imported one-layer image (`/etc/group`, `/etc/passwd`, `/keep`) and its store.
    static func parentImage(_ directory: TemporaryDirectory) throws -> (ContentStore, ImageImporter.ImportedImage) {
        var tar = TarBuilder()
        tar.directory("./")
        tar.directory("./etc/")
        tar.file("./etc/group", "root:x:0:\n")
        tar.file("./etc/passwd", "root:x:0:0::/root:/bin/sh\n")
        tar.file("./keep", "kept\n")
        tar.end()
        let tarball = directory.file("rootfs.tar")
        try Data(tar.bytes).write(to: URL(fileURLWithPath: tarball))
        let store = try ContentStore(root: directory.file("store"))
        let image = try ImageImporter(store: store).importRootfs(
            tarballAt: tarball, tag: "base:1", containerConfig: .init(env: ["PATH=/bin", "KEEP=1"], cmd: ["/bin/sh"]))
        return (store, image)
    }

    /// A file descriptor reading `bytes` (a pipe would do; a file keeps it simple).
    static func descriptor(_ bytes: [UInt8], _ directory: TemporaryDirectory) throws -> Int32 {
        let path = directory.file("changes-\(UUID().uuidString).tar")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return open(path, O_RDONLY)
    }

    @Test func aChangesLayerStacksOnTheParentWithConfigHistoryAndTag() throws {
        let directory = try TemporaryDirectory()
        let (store, parent) = try Self.parentImage(directory)
        var changes = TarBuilder()
        changes.directory("etc/")
        changes.file("etc/.wh.group", "")
        changes.file("made", "new\n")
        changes.end()
        let descriptor = try Self.descriptor(changes.bytes, directory)
        defer { close(descriptor) }
        let committed = try ImageCommitter(store: store).commit(
            layerTar: descriptor,
            .init(parent: parent.manifest, tag: "committed:v2", author: "Ada <ada@example.com>", comment: "added made",
                  createdBy: "sh -c echo new > /made", changes: ["ENV EXTRA=$KEEP-x", "HEALTHCHECK --interval=2s CMD test -e /made"])
        ) { config in
            config.cmd = ["sh", "-c", "echo new > /made"]
        }
        #expect(try store.resolve(tag: "committed:v2") == committed.manifest)
        #expect(committed.diffID == Digest.of(changes.bytes))
        #expect(committed.uncompressedBytes == Int64(changes.bytes.count))
        #expect(try LayerCompression.detect(try store.read(committed.layer, maximumBytes: 1 << 20)) == .gzip)

        let root = directory.file("rootfs")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        let (manifest, config) = try ImageImporterTests.extractImage(store, tag: "committed:v2", into: root)
        #expect(manifest.layers.count == 2 && manifest.layers[1].mediaType == MediaType.ociLayerGzip)
        #expect(config.rootfs.diffIDs == [parent.diffID, committed.diffID])
        #expect(config.author == "Ada <ada@example.com>")
        #expect(config.history?.map(\.createdBy) == ["shoal image import", "sh -c echo new > /made"])
        #expect(config.history?.last?.comment == "added made" && config.history?.last?.author == "Ada <ada@example.com>")
        #expect(config.config?.cmd == ["sh", "-c", "echo new > /made"])
        #expect(config.config?.env == ["PATH=/bin", "KEEP=1", "EXTRA=1-x"])
        #expect(config.config?.healthcheck == HealthConfig(test: ["CMD-SHELL", "test -e /made"], intervalNanoseconds: 2_000_000_000))
        #expect(try String(contentsOfFile: root + "/made", encoding: .utf8) == "new\n")
        #expect(try String(contentsOfFile: root + "/keep", encoding: .utf8) == "kept\n")
        #expect(!FileManager.default.fileExists(atPath: root + "/etc/group"), "the whiteout deletes the parent's file")
        #expect(FileManager.default.fileExists(atPath: root + "/etc/passwd"))
        // The parent's layer is now used by two manifests.
        #expect(try store.referenceCount(of: parent.layer) == 2)
    }

    @Test func anUntaggedCommitIsStoredWithoutAName() throws {
        let directory = try TemporaryDirectory()
        let (store, parent) = try Self.parentImage(directory)
        var empty = TarBuilder()
        empty.end()
        let descriptor = try Self.descriptor(empty.bytes, directory)
        defer { close(descriptor) }
        let committed = try ImageCommitter(store: store).commit(layerTar: descriptor, .init(parent: parent.manifest, tag: nil, createdBy: "true")) { _ in }
        #expect(store.contains(committed.manifest))
        #expect(try store.tags().map(\.name) == ["base:1"])
    }

    @Test func badInputStoresNoImage() throws {
        let directory = try TemporaryDirectory()
        let (store, parent) = try Self.parentImage(directory)
        var changes = TarBuilder()
        changes.file("x", "x")
        changes.end()
        let descriptor = try Self.descriptor(changes.bytes, directory)
        defer { close(descriptor) }
        let committer = ImageCommitter(store: store)
        let blobsBefore = try store.blobs()

        #expect {
            try committer.commit(layerTar: descriptor, .init(parent: parent.manifest, tag: "x:1", createdBy: "", changes: ["RUN true"])) { _ in }
        } throws: { "\($0)".contains("RUN cannot be applied") }
        #expect {
            try committer.commit(layerTar: descriptor, .init(parent: parent.manifest, tag: "Bad Name", createdBy: "")) { _ in }
        } throws: { "\($0)".contains("invalid tag") }
        let missing = Digest.of(Array("nothing".utf8))
        #expect {
            try committer.commit(layerTar: descriptor, .init(parent: missing, tag: "x:1", createdBy: "")) { _ in }
        } throws: { "\($0)".contains("no longer in the content store") }
        // The parent's config is not a manifest.
        #expect {
            try committer.commit(layerTar: descriptor, .init(parent: parent.config, tag: "x:1", createdBy: "")) { _ in }
        } throws: { "\($0)".contains("cannot be read") }
        #expect {
            try committer.commit(layerTar: -1, .init(parent: parent.manifest, tag: "x:1", createdBy: "")) { _ in }
        } throws: { "\($0)".contains("reading the container's changes failed") }
        #expect(try store.tags().map(\.name) == ["base:1"])
        #expect(try store.blobs() == blobsBefore)
    }
}

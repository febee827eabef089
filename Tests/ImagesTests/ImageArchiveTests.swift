import TestSupport
import Foundation
@testable import Images
import Testing

/// `shoal image save` / `load`: OCI image layout and docker-archive tars,
/// round trips, archives other tools write, and bad archives that must
/// leave the store as it was.
@Suite struct ImageArchiveTests {
    /// A store with two images: `plain:1` (uncompressed layer) and `gz:1`
    /// (gzip layer), made from small root file systems.
    struct Fixture {
        let directory: TemporaryDirectory
        let store: ContentStore
        let plain: ImageImporter.ImportedImage
        let gzipped: ImageImporter.ImportedImage

        init(_ label: String = #function) throws {
            directory = try TemporaryDirectory(label)
            store = try ContentStore(root: directory.file("store"))
            var first = TarBuilder()
            first.directory("./etc/")
            first.file("./etc/motd", "plain image\n")
            first.end()
            let plainTar = directory.file("plain.tar")
            try Data(first.bytes).write(to: URL(fileURLWithPath: plainTar))
            plain = try ImageImporter(store: store).importRootfs(tarballAt: plainTar, tag: "plain:1",
                                                                 containerConfig: .init(cmd: ["/bin/true"]))
            var second = TarBuilder()
            second.directory("./srv/")
            second.add("./srv/run", data: Array("#!/bin/sh\necho gz\n".utf8), mode: 0o755)
            second.symlink("./srv/link", to: "run")
            second.end()
            let gzippedTar = directory.file("gz.tar.gz")
            try Data(gzip(second.bytes)).write(to: URL(fileURLWithPath: gzippedTar))
            gzipped = try ImageImporter(store: store).importRootfs(tarballAt: gzippedTar, tag: "127.0.0.1:5000/web/gz:1")
        }

        func save(_ names: [String], format: ImageArchiveFormat, as file: String) throws -> String {
            let path = directory.file(file)
            let images = try names.map { ImageArchiveWriter.Image(name: $0, digest: try #require(try store.resolve(tag: $0))) }
            try ImageArchiveWriter(store: store).save(images, format: format, to: path)
            return path
        }
    }

    /// Everything a load could change: blobs, tags, and leftovers in ingest/.
    struct StoreState: Equatable {
        var blobs: [Digest]
        var tags: [String]
        var ingest: [String]

        init(_ store: ContentStore) throws {
            blobs = try store.blobs()
            tags = try store.tags().map { "\($0.name)=\($0.digest)" }
            ingest = try FileManager.default.contentsOfDirectory(atPath: store.root + "/ingest")
        }
    }

    /// The members of a tar (regular files only), in order.
    static func members(of path: String) throws -> [(name: String, bytes: [UInt8])] {
        let reader = TarReader(source: MemoryByteSource([UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))))
        var members: [(String, [UInt8])] = []
        while let entry = try reader.next() {
            guard entry.kind == .regular else { continue }
            var bytes: [UInt8] = []
            try reader.readData { bytes += $0 }
            members.append((entry.displayPath, bytes))
        }
        return members
    }

    static func write(_ members: [(name: String, bytes: [UInt8])], to path: String) throws {
        var tar = TarBuilder()
        for member in members { tar.add(member.name, data: member.bytes) }
        tar.end()
        try Data(tar.bytes).write(to: URL(fileURLWithPath: path))
    }

    static func extractedText(_ store: ContentStore, tag: String, file: String, in directory: TemporaryDirectory) throws -> String {
        let root = directory.file("extract-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        _ = try ImageImporterTests.extractImage(store, tag: tag, into: root)
        return try String(contentsOfFile: root + "/" + file, encoding: .utf8)
    }

    // MARK: Round trips

    @Test func ociArchiveRoundTripsThroughSaveRemoveAndLoad() throws {
        let fixture = try Fixture()
        let archive = try fixture.save(["plain:1", "127.0.0.1:5000/web/gz:1"], format: .ociArchive, as: "images.tar")
        let names = try Self.members(of: archive).map(\.name)
        #expect(names.prefix(2) == ["oci-layout", "index.json"])
        let blobs = [fixture.plain.manifest, fixture.plain.config, fixture.plain.layer,
                     fixture.gzipped.manifest, fixture.gzipped.config, fixture.gzipped.layer]
        #expect(Set(names.dropFirst(2)) == Set(blobs.map { "blobs/sha256/" + $0.hex }))
        // Saving is deterministic: the same images make the same bytes.
        let again = try fixture.save(["plain:1", "127.0.0.1:5000/web/gz:1"], format: .ociArchive, as: "again.tar")
        #expect(try Data(contentsOf: URL(fileURLWithPath: archive)) == Data(contentsOf: URL(fileURLWithPath: again)))

        // rm + prune: the store is empty; load brings everything back under the same names and digests.
        for tag in ["plain:1", "127.0.0.1:5000/web/gz:1"] { #expect(try fixture.store.removeTag(tag)) }
        try fixture.store.prune()
        #expect(try fixture.store.blobs().isEmpty)
        let report = try ImageArchiveLoader(store: fixture.store).load(from: archive)
        #expect(report.format == .ociArchive)
        #expect(report.images.map(\.names) == [["plain:1"], ["127.0.0.1:5000/web/gz:1"]])
        #expect(report.images.map(\.manifest) == [fixture.plain.manifest, fixture.gzipped.manifest])
        #expect(try fixture.store.blobs() == blobs.sorted())
        #expect(try fixture.store.referenceCount(of: fixture.gzipped.layer) == 1)
        #expect(try Self.extractedText(fixture.store, tag: "plain:1", file: "etc/motd", in: fixture.directory) == "plain image\n")
        #expect(try Self.extractedText(fixture.store, tag: "127.0.0.1:5000/web/gz:1", file: "srv/run", in: fixture.directory) == "#!/bin/sh\necho gz\n")
        // Loading twice changes nothing.
        let before = try StoreState(fixture.store)
        _ = try ImageArchiveLoader(store: fixture.store).load(from: archive)
        #expect(try StoreState(fixture.store) == before)
        // Prune keeps what was loaded (tags reach it).
        #expect(try fixture.store.prune().removed.isEmpty)
    }

    @Test func dockerArchiveRoundTripsWithUncompressedLayers() throws {
        let fixture = try Fixture()
        let archive = try fixture.save(["127.0.0.1:5000/web/gz:1", "plain:1"], format: .dockerArchive, as: "docker.tar")
        let members = try Self.members(of: archive)
        #expect(members.map(\.name) == ["manifest.json", "repositories",
                                        fixture.gzipped.config.hex + ".json", fixture.plain.config.hex + ".json",
                                        fixture.gzipped.diffID.hex + ".tar", fixture.plain.diffID.hex + ".tar"])
        let entries = try JSONDecoder().decode([DockerArchiveManifestEntry].self, from: Data(members[0].bytes))
        #expect(entries.map(\.RepoTags) == [["127.0.0.1:5000/web/gz:1"], ["plain:1"]])
        let repositories = try JSONDecoder().decode([String: [String: String]].self, from: Data(members[1].bytes))
        #expect(repositories == ["127.0.0.1:5000/web/gz": ["1": fixture.gzipped.diffID.hex], "plain": ["1": fixture.plain.diffID.hex]])
        // The gzip layer is written uncompressed: its bytes hash to the diff ID.
        #expect(Digest.of(members[4].bytes) == fixture.gzipped.diffID)

        let target = try ContentStore(root: fixture.directory.file("target"))
        let report = try ImageArchiveLoader(store: target).load(from: archive)
        #expect(report.format == .dockerArchive)
        #expect(report.images.map(\.names) == [["127.0.0.1:5000/web/gz:1"], ["plain:1"]])
        // The uncompressed-layer image comes back byte for byte (Shoal writes the same manifest).
        #expect(report.images[1].manifest == fixture.plain.manifest)
        #expect(target.contains(fixture.gzipped.diffID) && !target.contains(fixture.gzipped.layer))
        #expect(try Self.extractedText(target, tag: "127.0.0.1:5000/web/gz:1", file: "srv/run", in: fixture.directory) == "#!/bin/sh\necho gz\n")
    }

    @Test func loadsClassicDockerSaveArchivesWithLinksAndCompressedLayers() throws {
        let fixture = try Fixture()
        var layer = TarBuilder()
        layer.file("./hello.txt", "from docker\n")
        layer.end()
        let diffID = Digest.of(layer.bytes)
        let config = ImageDocument.encode(ImageConfig(config: .init(cmd: ["/hello"]), rootfs: .init(diffIDs: [diffID, diffID])))
        let configDigest = Digest.of(config)
        // docker save (before Docker 25): <id>/layer.tar, <id>/json, VERSION; a repeated layer as a symlink;
        // and a gzip-compressed layer tar, which docker load accepts too.
        var tar = TarBuilder()
        tar.add("aaaa/VERSION", data: Array("1.0".utf8))
        tar.add("aaaa/json", data: Array("{}".utf8))
        tar.add("aaaa/layer.tar", data: gzip(layer.bytes))
        tar.symlink("bbbb/layer.tar", to: "../aaaa/layer.tar")
        tar.add(configDigest.hex + ".json", data: config)
        tar.add("repositories", data: Array(#"{"docker/hello":{"1":"bbbb"}}"#.utf8))
        tar.add("manifest.json", data: Array(#"[{"Config":"\#(configDigest.hex).json","RepoTags":["docker/hello:1"],"Layers":["aaaa/layer.tar","bbbb/layer.tar"]}]"#.utf8))
        tar.end()
        let archive = fixture.directory.file("classic.tar")
        try Data(tar.bytes).write(to: URL(fileURLWithPath: archive))

        let report = try ImageArchiveLoader(store: fixture.store).load(from: archive)
        #expect(report.images.map(\.names) == [["docker/hello:1"]])
        let (_, manifest) = try Self.manifest(report.images[0].manifest, in: fixture.store)
        #expect(manifest.layers.map(\.mediaType) == [MediaType.ociLayerGzip, MediaType.ociLayerGzip])
        #expect(manifest.config.digest == configDigest)
        #expect(try Self.extractedText(fixture.store, tag: "docker/hello:1", file: "hello.txt", in: fixture.directory) == "from docker\n")
    }

    @Test func gzippedArchivesAndLayoutDirectoriesLoad() throws {
        let fixture = try Fixture()
        let archive = try fixture.save(["plain:1"], format: .ociArchive, as: "plain.tar")
        let compressed = fixture.directory.file("plain.tar.gz")
        try Data(gzip([UInt8](try Data(contentsOf: URL(fileURLWithPath: archive))))).write(to: URL(fileURLWithPath: compressed))
        let target = try ContentStore(root: fixture.directory.file("target"))
        #expect(try ImageArchiveLoader(store: target).load(from: compressed).images.map(\.manifest) == [fixture.plain.manifest])

        // The same layout unpacked as a directory, its image named only "latest" (as umoci and skopeo's oci: write it).
        let layout = fixture.directory.file("layout")
        for member in try Self.members(of: archive) {
            let path = layout + "/" + member.name
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            var bytes = member.bytes
            if member.name == "index.json" {
                bytes = Array(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\"plain:1\"", with: "\"latest\"").utf8)
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        let third = try ContentStore(root: fixture.directory.file("third"))
        let unnamed = try ImageArchiveLoader(store: third).load(from: layout)
        #expect(unnamed.images.map(\.names) == [[fixture.plain.manifest.description]])
        #expect(unnamed.images.first?.bareTag == "latest")
        let named = try ImageArchiveLoader(store: third).load(from: layout, repository: "local/plain")
        #expect(named.images.map(\.names) == [["local/plain:latest"]])
        #expect(try third.resolve(tag: "local/plain:latest") == fixture.plain.manifest)
    }

    // MARK: Bad archives

    enum Damage: String, CaseIterable, Sendable {
        case truncatedInsideALayer, truncatedInsideAHeader, truncatedAfterTheDocuments
        case flippedLayerByte, missingLayer, missingIndex, invalidIndexJSON, wrongLayoutVersion, indexSizeMismatch
        case dockerDiffIDMismatch, dockerConfigNameMismatch, dockerMissingLayer, dockerInvalidManifestJSON
        case notATar, emptyFile, tarWithoutImages, badName
    }

    @Test(arguments: Damage.allCases)
    func badArchivesAreRefusedAndLeaveTheStoreAsItWas(damage: Damage) throws {
        let fixture = try Fixture("bad-\(damage.rawValue)")
        let oci = try fixture.save(["plain:1", "127.0.0.1:5000/web/gz:1"], format: .ociArchive, as: "oci.tar")
        let docker = try fixture.save(["plain:1"], format: .dockerArchive, as: "docker.tar")
        // The target store already holds an image, so "unchanged" means something.
        let target = try ContentStore(root: fixture.directory.file("target"))
        _ = try ImageArchiveLoader(store: target).load(from: try fixture.save(["127.0.0.1:5000/web/gz:1"], format: .ociArchive, as: "seed.tar"))
        let before = try StoreState(target)

        let ociBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: oci)))
        let ociMembers = try Self.members(of: oci)
        let dockerMembers = try Self.members(of: docker)
        let layerName = "blobs/sha256/" + fixture.plain.layer.hex
        let damaged = fixture.directory.file("damaged.tar")
        func rewrite(_ members: [(name: String, bytes: [UInt8])], _ change: (inout [(name: String, bytes: [UInt8])]) -> Void) throws {
            var copy = members
            change(&copy)
            try Self.write(copy, to: damaged)
        }
        func replace(_ name: String, _ transform: @escaping ([UInt8]) -> [UInt8]) -> (inout [(name: String, bytes: [UInt8])]) -> Void {
            { members in members = members.map { $0.name == name ? ($0.name, transform($0.bytes)) : $0 } }
        }
        var normalizeName: (String) throws -> String = { $0 }
        let expectation: (ImageArchiveError) -> Bool
        switch damage {
        case .truncatedInsideALayer, .truncatedInsideAHeader, .truncatedAfterTheDocuments:
            // Offsets: inside the plain layer's data; 100 bytes into its header; just before the blobs.
            let layerOffset = try #require(Self.offset(of: layerName, in: ociBytes))
            let blobsOffset = try #require(Self.offset(of: "blobs/", in: ociBytes))
            let cut = damage == .truncatedInsideALayer ? layerOffset + 512 + 1_000 : damage == .truncatedInsideAHeader ? layerOffset + 100 : blobsOffset
            try Data(ociBytes[..<cut]).write(to: URL(fileURLWithPath: damaged))
            expectation = { error in
                switch error {
                case .malformedArchive: return damage != .truncatedAfterTheDocuments
                case .missingMember: return damage == .truncatedAfterTheDocuments
                default: return false
                }
            }
        case .flippedLayerByte:
            try rewrite(ociMembers, replace(layerName) { var bytes = $0; bytes[700] ^= 0x01; return bytes })
            expectation = { if case .digestMismatch(let member, let expected, _) = $0 { return member == layerName && expected == fixture.plain.layer }; return false }
        case .missingLayer:
            try rewrite(ociMembers) { $0.removeAll { $0.name == layerName } }
            expectation = { if case .missingMember(let member, _) = $0 { return member == layerName }; return false }
        case .missingIndex:
            try rewrite(ociMembers) { $0.removeAll { $0.name == "index.json" } }
            expectation = { if case .unknownFormat(_, let members) = $0 { return members.first == "oci-layout" }; return false }
        case .invalidIndexJSON:
            try rewrite(ociMembers, replace("index.json") { Array($0.dropLast(3)) })
            expectation = { if case .invalidDocument(let member, _) = $0 { return member == "index.json" }; return false }
        case .wrongLayoutVersion:
            try rewrite(ociMembers, replace("oci-layout") { _ in Array(#"{"imageLayoutVersion":"2.0.0"}"#.utf8) })
            expectation = { if case .invalidDocument(let member, _) = $0 { return member == "oci-layout" }; return false }
        case .indexSizeMismatch:
            // Every size in index.json gains a leading 1.
            try rewrite(ociMembers, replace("index.json") { Array(String(decoding: $0, as: UTF8.self).replacingOccurrences(of: "\"size\":", with: "\"size\":1").utf8) })
            expectation = { if case .sizeMismatch = $0 { return true }; return false }
        case .dockerDiffIDMismatch:
            let configName = fixture.plain.config.hex + ".json"
            // A config listing another diff ID, under its own (correct) digest name.
            var config = try ImageDocument.decodeConfig(try fixture.store.read(fixture.plain.config, maximumBytes: 1 << 20))
            config.rootfs.diffIDs = [Digest.of(Array("other".utf8))]
            let bytes = ImageDocument.encode(config)
            let name = Digest.of(bytes).hex + ".json"
            try rewrite(dockerMembers) { members in
                members = members.map { member in
                    if member.name == configName { return (name, bytes) }
                    if member.name == "manifest.json" {
                        return (member.name, Array(String(decoding: member.bytes, as: UTF8.self).replacingOccurrences(of: configName, with: name).utf8))
                    }
                    return member
                }
            }
            expectation = { if case .diffIDMismatch(let member, _, let actual) = $0 { return member.hasSuffix(".tar") && actual == fixture.plain.diffID }; return false }
        case .dockerConfigNameMismatch:
            try rewrite(dockerMembers, replace(fixture.plain.config.hex + ".json") { $0 + Array(" ".utf8) })
            expectation = { if case .digestMismatch(let member, _, _) = $0 { return member.hasSuffix(".json") }; return false }
        case .dockerMissingLayer:
            try rewrite(dockerMembers) { $0.removeAll { $0.name.hasSuffix(".tar") } }
            expectation = { if case .missingMember(let member, let neededBy) = $0 { return member == fixture.plain.diffID.hex + ".tar" && neededBy == "manifest.json" }; return false }
        case .dockerInvalidManifestJSON:
            try rewrite(dockerMembers, replace("manifest.json") { _ in Array(#"{"Config":1}"#.utf8) })
            expectation = { if case .invalidDocument(let member, _) = $0 { return member == "manifest.json" }; return false }
        case .notATar:
            try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }).write(to: URL(fileURLWithPath: damaged))
            expectation = { if case .malformedArchive = $0 { return true }; return false }
        case .emptyFile:
            try Data().write(to: URL(fileURLWithPath: damaged))
            expectation = { if case .unknownFormat = $0 { return true }; return false }
        case .tarWithoutImages:
            try Self.write([("etc/hostname", Array("box\n".utf8))], to: damaged)
            expectation = { if case .unknownFormat(_, let members) = $0 { return members == ["etc/hostname"] }; return false }
        case .badName:
            try Data(ociBytes).write(to: URL(fileURLWithPath: damaged))
            normalizeName = { name in
                if name.contains("127.0.0.1") { throw ImageArchiveError.unsupported("refused by the test") }
                return name
            }
            expectation = { if case .invalidName(let name, _) = $0 { return name == "127.0.0.1:5000/web/gz:1" }; return false }
        }
        #expect {
            _ = try ImageArchiveLoader(store: target).load(from: damaged, normalizeName: normalizeName)
        } throws: { error in
            guard let error = error as? ImageArchiveError else { return false }
            return expectation(error) && error.description.count > 40
        }
        #expect(try StoreState(target) == before, "a refused archive must leave the store as it was")
        // The store still works: the intact archive loads.
        #expect(try ImageArchiveLoader(store: target).load(from: oci).images.count == 2)
    }

    @Test func saveRefusesWhatItCannotWriteAndLeavesNoFile() throws {
        let fixture = try Fixture()
        let output = fixture.directory.file("out.tar")
        let missing = Digest.of(Array("not stored".utf8))
        #expect(throws: ImageArchiveError.self) {
            try ImageArchiveWriter(store: fixture.store).save([.init(name: "x:1", digest: missing)], format: .ociArchive, to: output)
        }
        #expect(throws: ImageArchiveError.self) {
            try ImageArchiveWriter(store: fixture.store).save([], format: .dockerArchive, to: output)
        }
        // A manifest whose layer was lost from the store.
        _ = unlink(fixture.store.path(for: fixture.plain.layer))
        #expect(throws: ImageArchiveError.self) {
            try ImageArchiveWriter(store: fixture.store).save([.init(name: "plain:1", digest: fixture.plain.manifest)], format: .dockerArchive, to: output)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path).filter { $0.hasPrefix("out.tar") }
        #expect(leftovers.isEmpty)
    }

    /// The stored manifest `digest` names (an image manifest, or it throws).
    static func manifest(_ digest: Digest, in store: ContentStore) throws -> ([UInt8], ImageManifest) {
        let bytes = try store.read(digest, maximumBytes: Int64(ImageDocument.maximumManifestBytes))
        guard case .manifest(let manifest) = try ImageDocument.decode(bytes) else {
            throw ImageDocumentError.malformed(kind: "manifest", reason: "\(digest) is an index")
        }
        return (bytes, manifest)
    }

    /// Where the header of member `name` starts in a tar Shoal wrote (names under 100 bytes).
    static func offset(of name: String, in bytes: [UInt8]) -> Int? {
        let target = Array(name.utf8)
        var offset = 0
        while offset + 512 <= bytes.count {
            let header = bytes[offset..<(offset + 512)]
            if header.allSatisfy({ $0 == 0 }) { return nil }
            let field = Array(header.prefix(100).prefix { $0 != 0 })
            let sizeText = String(decoding: header[(offset + 124)..<(offset + 135)], as: UTF8.self)
            let size = Int(sizeText, radix: 8) ?? 0
            if field == target { return offset }
            offset += 512 + (size + 511) / 512 * 512
        }
        return nil
    }
}

import Foundation
import Images
import Testing

@Suite struct ImageDocumentTests {
    static let configDigest = "sha256:" + String(repeating: "1", count: 64)
    static let layerDigest = "sha256:" + String(repeating: "2", count: 64)
    static let amdDigest = "sha256:" + String(repeating: "3", count: 64)
    static let armDigest = "sha256:" + String(repeating: "4", count: 64)

    // As `docker push` writes it (Docker schema 2).
    static let dockerManifest = """
    {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
     "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1469,"digest":"\(configDigest)"},
     "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2811478,"digest":"\(layerDigest)"}]}
    """

    static let dockerManifestList = """
    {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
     {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,"digest":"\(armDigest)",
      "platform":{"architecture":"arm","os":"linux","variant":"v7"}},
     {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,"digest":"\(amdDigest)",
      "platform":{"architecture":"amd64","os":"linux"}}]}
    """

    // As umoci writes it: no mediaType in the document.
    static let ociManifestWithoutMediaType = """
    {"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":10},
     "layers":[],"annotations":{"org.opencontainers.image.ref.name":"latest"}}
    """

    @Test func decodesDockerSchema2Manifest() throws {
        guard case let .manifest(manifest) = try ImageDocument.decode(Array(Self.dockerManifest.utf8)) else {
            Issue.record("expected a manifest"); return
        }
        #expect(manifest.mediaType == MediaType.dockerManifest)
        #expect(manifest.config.digest.description == Self.configDigest)
        #expect(manifest.config.mediaType == MediaType.dockerConfig)
        #expect(manifest.layers.count == 1)
        #expect(manifest.layers[0].size == 2_811_478)
        #expect(MediaType.layers[manifest.layers[0].mediaType] == true)
    }

    @Test func selectsLinuxAMD64FromADockerManifestList() throws {
        guard case let .index(index) = try ImageDocument.decode(Array(Self.dockerManifestList.utf8)) else {
            Issue.record("expected an index"); return
        }
        #expect(try index.manifest(for: .linuxAMD64).digest.description == Self.amdDigest)
        #expect(try index.manifest(for: Platform(architecture: "arm", os: "linux", variant: "v7")).digest.description == Self.armDigest)
        #expect {
            try index.manifest(for: Platform(architecture: "s390x", os: "linux"))
        } throws: { error in
            let text = (error as? ImageDocumentError)?.description ?? ""
            return text.contains("linux/s390x") && text.contains("linux/amd64") && text.contains("linux/arm/v7")
        }
    }

    @Test func ociIndexSkipsAttestationsAndTakesMediaTypeFromTransport() throws {
        let text = """
        {"schemaVersion":2,"manifests":[
         {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"\(Self.armDigest)",
          "platform":{"architecture":"unknown","os":"unknown"}},
         {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"\(Self.amdDigest)",
          "platform":{"architecture":"amd64","os":"linux","os.version":"6.1"}}]}
        """
        let document = try ImageDocument.decode(Array(text.utf8), mediaType: "application/vnd.oci.image.index.v1+json; charset=utf-8")
        guard case let .index(index) = document else { Issue.record("expected an index"); return }
        #expect(index.manifests[1].platform?.osVersion == "6.1")
        #expect(try index.manifest(for: .linuxAMD64).digest.description == Self.amdDigest)
    }

    @Test func ociManifestWithoutMediaTypeIsRecognised() throws {
        guard case let .manifest(manifest) = try ImageDocument.decode(Array(Self.ociManifestWithoutMediaType.utf8)) else {
            Issue.record("expected a manifest"); return
        }
        #expect(manifest.mediaType == nil)
        #expect(manifest.annotations?["org.opencontainers.image.ref.name"] == "latest")
    }

    @Test func oversizedManifestIsRefusedBeforeDecoding() {
        // Valid JSON up front, then 4 MiB of padding: must be refused on size alone.
        var bytes = Array(Self.dockerManifest.utf8)
        bytes += [UInt8](repeating: 0x20, count: ImageDocument.maximumManifestBytes)
        #expect(throws: ImageDocumentError.tooLarge(kind: "manifest", sizeBytes: bytes.count,
                                                    limitBytes: ImageDocument.maximumManifestBytes)) {
            try ImageDocument.decode(bytes)
        }
        let config = [UInt8](repeating: 0x20, count: ImageDocument.maximumConfigBytes + 1)
        #expect(throws: ImageDocumentError.self) { try ImageDocument.decodeConfig(config) }
    }

    @Test func schema1AndUnknownMediaTypesAreRefusedClearly() {
        #expect {
            try ImageDocument.decode(Array(#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#.utf8))
        } throws: { error in
            (error as? ImageDocumentError)?.description.contains("schema 1") == true
        }
        #expect {
            try ImageDocument.decode(Array(#"{"schemaVersion":2,"mediaType":"text/html","config":{}}"#.utf8))
        } throws: { error in
            (error as? ImageDocumentError)?.description.contains("unsupported media type \"text/html\"") == true
        }
        #expect {
            try ImageDocument.decode(Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#.utf8))
        } throws: { error in
            (error as? ImageDocumentError)?.description.contains("missing field") == true
        }
        #expect(throws: ImageDocumentError.self) { try ImageDocument.decode(Array("not json".utf8)) }
    }

    @Test func badDigestInsideAManifestIsRefused() {
        let text = Self.dockerManifest.replacingOccurrences(of: Self.layerDigest, with: "sha256:ABC")
        #expect {
            try ImageDocument.decode(Array(text.utf8))
        } throws: { error in
            (error as? ImageDocumentError)?.description.contains("invalid digest") == true
        }
    }

    @Test func decodingByDigestVerifiesTheBytes() throws {
        let bytes = Array(Self.dockerManifest.utf8)
        _ = try ImageDocument.decode(bytes, digest: Digest.of(bytes))
        let other = Digest.of(Array("other".utf8))
        #expect(throws: ImageDocumentError.digestMismatch(expected: other, actual: Digest.of(bytes))) {
            try ImageDocument.decode(bytes, digest: other)
        }
    }

    @Test func configRoundTripKeepsDockerKeys() throws {
        let text = """
        {"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"ExposedPorts":{"80/tcp":{}},"WorkingDir":"/"},
         "rootfs":{"type":"layers","diff_ids":["\(Self.layerDigest)"]},
         "history":[{"created":"2024-01-01T00:00:00Z","created_by":"ADD rootfs.tar /","empty_layer":false}]}
        """
        let config = try ImageDocument.decodeConfig(Array(text.utf8))
        #expect(config.rootfs.diffIDs.map(\.description) == [Self.layerDigest])
        #expect(config.config?.cmd == ["sh"])
        #expect(config.config?.exposedPorts?["80/tcp"] != nil)
        #expect(config.history?.first?.createdBy == "ADD rootfs.tar /")
        let encoded = String(decoding: ImageDocument.encode(config), as: UTF8.self)
        #expect(encoded.contains("\"diff_ids\""))
        #expect(encoded.contains("\"Cmd\""))
        #expect(try ImageDocument.decodeConfig(ImageDocument.encode(config)) == config)
    }
}

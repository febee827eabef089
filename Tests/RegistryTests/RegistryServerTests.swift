import TestSupport
import Foundation
import HTTP
import Images
import Net
@testable import Registry
import Testing

/// The OCI Distribution endpoints of our server, one by one, with the
/// spec's status codes, headers and error bodies.
@Suite("Registry server conformance", .timeLimit(.minutes(3)))
struct RegistryServerTests {
    let client = HTTPClient()

    @Test func apiVersionCheck() async throws {
        let registry = try RegistryFixture()
        let response = try await client.exchange(.get, registry.base + "/v2/")
        #expect(response.status == 200)
        #expect(response.headers["Docker-Distribution-API-Version"] == "registry/2.0")
        let unknown = try await client.exchange(.get, registry.base + "/v3/nothing")
        #expect(unknown.status == 404)
        #expect(unknown.errorCode == "UNSUPPORTED")
        await registry.stop()
    }

    @Test func monolithicUploadThenHeadGetAndRanges() async throws {
        let registry = try RegistryFixture()
        let blob = pattern(300_000)
        let digest = Digest.of(blob)
        let put = try await client.exchange(.post, registry.base + "/v2/library/data/blobs/uploads/?digest=\(digest)", body: blob)
        #expect(put.status == 201, "\(put.text)")
        #expect(put.headers["Location"] == "/v2/library/data/blobs/\(digest)")
        #expect(put.headers["Docker-Content-Digest"] == digest.description)

        let head = try await client.exchange(.head, registry.base + "/v2/library/data/blobs/\(digest)")
        #expect(head.status == 200)
        #expect(head.headers["Content-Length"] == "300000")
        #expect(head.headers["Docker-Content-Digest"] == digest.description)
        #expect(head.body.isEmpty)

        let get = try await client.exchange(.get, registry.base + "/v2/library/data/blobs/\(digest)")
        #expect(get.status == 200 && get.body == blob)

        let range = try await client.exchange(.get, registry.base + "/v2/library/data/blobs/\(digest)", headers: ["Range": "bytes=1000-1999"])
        #expect(range.status == 206)
        #expect(range.headers["Content-Range"] == "bytes 1000-1999/300000")
        #expect(range.body == Array(blob[1000..<2000]))
        let open = try await client.exchange(.get, registry.base + "/v2/library/data/blobs/\(digest)", headers: ["Range": "bytes=299990-"])
        #expect(open.status == 206 && open.body == Array(blob[299_990...]))
        let suffix = try await client.exchange(.get, registry.base + "/v2/library/data/blobs/\(digest)", headers: ["Range": "bytes=-5"])
        #expect(suffix.status == 206 && suffix.body == Array(blob.suffix(5)))
        let outside = try await client.exchange(.get, registry.base + "/v2/library/data/blobs/\(digest)", headers: ["Range": "bytes=400000-"])
        #expect(outside.status == 416)
        #expect(outside.headers["Content-Range"] == "bytes */300000")

        let missing = try await client.exchange(.get, registry.base + "/v2/library/data/blobs/sha256:\(String(repeating: "0", count: 64))")
        #expect(missing.status == 404 && missing.errorCode == "BLOB_UNKNOWN")
        let missingHead = try await client.exchange(.head, registry.base + "/v2/library/data/blobs/sha256:\(String(repeating: "0", count: 64))")
        #expect(missingHead.status == 404)
        let badDigest = try await client.exchange(.get, registry.base + "/v2/library/data/blobs/sha256:XYZ")
        #expect(badDigest.status == 400 && badDigest.errorCode == "DIGEST_INVALID")
        let delete = try await client.exchange(.delete, registry.base + "/v2/library/data/blobs/\(digest)")
        #expect(delete.status == 405 && delete.errorCode == "UNSUPPORTED")
        await registry.stop()
    }

    @Test func chunkedUploadWithContentRangeAndOutOfOrderChunk() async throws {
        let registry = try RegistryFixture()
        let blob = pattern(250_000, seed: 3)
        let digest = Digest.of(blob)
        let start = try await client.exchange(.post, registry.base + "/v2/a/b/blobs/uploads/")
        #expect(start.status == 202)
        #expect(start.headers["Range"] == "0-0")
        let uuid = try #require(start.headers["Docker-Upload-UUID"])
        var location = try #require(start.headers["Location"])
        #expect(location.contains(uuid))

        let first = Array(blob[0..<100_000])
        let patch1 = try await client.exchange(.patch, registry.base + location,
                                               headers: ["Content-Range": "0-99999", "Content-Type": "application/octet-stream"], body: first)
        #expect(patch1.status == 202, "\(patch1.text)")
        #expect(patch1.headers["Range"] == "0-99999")
        location = try #require(patch1.headers["Location"])

        // A chunk that skips ahead: 416 with the current range, nothing appended.
        let skipped = try await client.exchange(.patch, registry.base + location,
                                                headers: ["Content-Range": "150000-249999"], body: Array(blob[150_000...]))
        #expect(skipped.status == 416)
        #expect(skipped.errorCode == "BLOB_UPLOAD_INVALID")
        #expect(skipped.headers["Range"] == "0-99999")

        let status = try await client.exchange(.get, registry.base + location)
        #expect(status.status == 204)
        #expect(status.headers["Range"] == "0-99999")

        let patch2 = try await client.exchange(.patch, registry.base + location,
                                               headers: ["Content-Range": "100000-199999"], body: Array(blob[100_000..<200_000]))
        #expect(patch2.status == 202)
        location = try #require(patch2.headers["Location"])
        // The final chunk rides on the PUT, digest with ':' unescaped.
        let put = try await client.exchange(.put, registry.base + location + "&digest=\(digest)",
                                            headers: ["Content-Range": "200000-249999"], body: Array(blob[200_000...]))
        #expect(put.status == 201, "\(put.text)")
        #expect(put.headers["Docker-Content-Digest"] == digest.description)
        #expect(registry.store.contains(digest))
        #expect(try registry.store.read(digest, maximumBytes: 1 << 20) == blob)
        // The session is gone.
        let after = try await client.exchange(.get, registry.base + location)
        #expect(after.status == 404 && after.errorCode == "BLOB_UPLOAD_UNKNOWN")
        #expect(registry.server.openUploadCount == 0)
        await registry.stop()
    }

    @Test func skopeoStyleStreamedPatchAndEscapedDigest() async throws {
        let registry = try RegistryFixture()
        let blob = pattern(2_000_000, seed: 9)
        let digest = Digest.of(blob)
        let start = try await client.exchange(.post, registry.base + "/v2/x/blobs/uploads/")
        let location = try #require(start.headers["Location"])
        // One PATCH with the whole blob and no Content-Range, then PUT with sha256%3A and no body.
        let patch = try await client.exchange(.patch, registry.base + location, body: blob)
        #expect(patch.status == 202)
        let next = try #require(patch.headers["Location"])
        let escaped = digest.description.replacingOccurrences(of: ":", with: "%3A")
        let put = try await client.exchange(.put, registry.base + next + "&digest=\(escaped)")
        #expect(put.status == 201, "\(put.text)")
        #expect(registry.store.contains(digest))
        await registry.stop()
    }

    @Test func digestMismatchLeavesNothing() async throws {
        let registry = try RegistryFixture()
        let blob = pattern(70_000)
        let wrong = Digest.of(Array("something else".utf8))
        // Monolithic.
        let monolithic = try await client.exchange(.post, registry.base + "/v2/x/blobs/uploads/?digest=\(wrong)", body: blob)
        #expect(monolithic.status == 400 && monolithic.errorCode == "DIGEST_INVALID")
        // Session: PATCH then PUT naming the wrong digest.
        let start = try await client.exchange(.post, registry.base + "/v2/x/blobs/uploads/")
        let patch = try await client.exchange(.patch, registry.base + start.headers["Location"]!, body: blob)
        let put = try await client.exchange(.put, registry.base + patch.headers["Location"]! + "&digest=\(wrong)")
        #expect(put.status == 400 && put.errorCode == "DIGEST_INVALID")
        // Session: whole body on the PUT.
        let start2 = try await client.exchange(.post, registry.base + "/v2/x/blobs/uploads/")
        let put2 = try await client.exchange(.put, registry.base + start2.headers["Location"]! + "&digest=\(wrong)", body: blob)
        #expect(put2.status == 400 && put2.errorCode == "DIGEST_INVALID")
        // Malformed digest.
        let start3 = try await client.exchange(.post, registry.base + "/v2/x/blobs/uploads/")
        let put3 = try await client.exchange(.put, registry.base + start3.headers["Location"]! + "&digest=md5:abc", body: blob)
        #expect(put3.status == 400 && put3.errorCode == "DIGEST_INVALID")

        #expect(!registry.store.contains(wrong))
        #expect(!registry.store.contains(Digest.of(blob)))
        #expect(try registry.store.blobs().isEmpty)
        let ingest = try FileManager.default.contentsOfDirectory(atPath: registry.store.root + "/ingest")
        #expect(ingest.isEmpty, "temporary files left: \(ingest)")
        await registry.stop()
    }

    @Test func crossRepositoryMount() async throws {
        let registry = try RegistryFixture()
        let blob = pattern(10_000)
        let digest = Digest.of(blob)
        _ = try await client.exchange(.post, registry.base + "/v2/source/blobs/uploads/?digest=\(digest)", body: blob)
        let mounted = try await client.exchange(.post, registry.base + "/v2/target/blobs/uploads/?mount=\(digest)&from=source")
        #expect(mounted.status == 201)
        #expect(mounted.headers["Location"] == "/v2/target/blobs/\(digest)")
        let unknown = Digest.of(Array("absent".utf8))
        let fallback = try await client.exchange(.post, registry.base + "/v2/target/blobs/uploads/?mount=\(unknown)&from=source")
        #expect(fallback.status == 202)
        #expect(fallback.headers["Location"]?.hasPrefix("/v2/target/blobs/uploads/") == true)
        let cancel = try await client.exchange(.delete, registry.base + fallback.headers["Location"]!)
        #expect(cancel.status == 204)
        await registry.stop()
    }

    /// Pushes a config and layer and returns a manifest over them.
    private func pushImage(_ registry: RegistryFixture, repository: String, mediaType: String? = MediaType.ociManifest) async throws -> ([UInt8], Digest) {
        let config = ImageDocument.encode(ImageConfig(rootfs: .init(diffIDs: [Digest.of(pattern(10))])))
        let layer = pattern(5000, seed: 1)
        for blob in [config, layer] {
            let response = try await client.exchange(.post, registry.base + "/v2/\(repository)/blobs/uploads/?digest=\(Digest.of(blob))", body: blob)
            #expect(response.status == 201)
        }
        var manifest = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: Digest.of(config), size: Int64(config.count)),
                                     layers: [Descriptor(mediaType: MediaType.ociLayerGzip, digest: Digest.of(layer), size: 5000)])
        manifest.mediaType = mediaType
        let bytes = ImageDocument.encode(manifest)
        return (bytes, Digest.of(bytes))
    }

    @Test func manifestsOfUnknownMediaTypesAreRefused() async throws {
        let registry = try RegistryFixture()
        let (bytes, _) = try await pushImage(registry, repository: "team/odd", mediaType: "application/vnd.example.thing.v1+json")
        let put = try await client.exchange(.put, registry.base + "/v2/team/odd/manifests/v1",
                                            headers: ["Content-Type": "application/vnd.example.thing.v1+json"], body: bytes)
        #expect(put.status == 400 && put.errorCode == "MANIFEST_INVALID", "\(put.status) \(put.text)")
        #expect(put.text.contains("application/vnd.example.thing.v1+json"))
        // A manifest sent as an index (document and Content-Type disagree) is refused too.
        let (manifestBytes, _) = try await pushImage(registry, repository: "team/odd", mediaType: nil)
        let mismatched = try await client.exchange(.put, registry.base + "/v2/team/odd/manifests/v2",
                                                   headers: ["Content-Type": MediaType.ociIndex], body: manifestBytes)
        #expect(mismatched.status == 400 && mismatched.errorCode == "MANIFEST_INVALID", "\(mismatched.status) \(mismatched.text)")
        #expect(try registry.store.resolve(tag: "team/odd:v1") == nil && registry.store.resolve(tag: "team/odd:v2") == nil)
        await registry.stop()
    }

    @Test func manifestsByTagAndDigest() async throws {
        let registry = try RegistryFixture()
        let (bytes, digest) = try await pushImage(registry, repository: "team/app")
        let put = try await client.exchange(.put, registry.base + "/v2/team/app/manifests/v1",
                                            headers: ["Content-Type": MediaType.ociManifest], body: bytes)
        #expect(put.status == 201, "\(put.text)")
        #expect(put.headers["Docker-Content-Digest"] == digest.description)
        #expect(put.headers["Location"] == "/v2/team/app/manifests/\(digest)")

        for reference in ["v1", digest.description] {
            let get = try await client.exchange(.get, registry.base + "/v2/team/app/manifests/\(reference)", headers: ["Accept": MediaType.ociManifest])
            #expect(get.status == 200 && get.body == bytes)
            #expect(get.headers["Content-Type"] == MediaType.ociManifest)
            #expect(get.headers["Docker-Content-Digest"] == digest.description)
            let head = try await client.exchange(.head, registry.base + "/v2/team/app/manifests/\(reference)")
            #expect(head.status == 200 && head.headers["Content-Length"] == String(bytes.count) && head.body.isEmpty)
        }
        // Content negotiation: a client that reads only Docker schema 2 cannot have an OCI manifest.
        let docker = try await client.exchange(.get, registry.base + "/v2/team/app/manifests/v1", headers: ["Accept": MediaType.dockerManifest])
        #expect(docker.status == 404 && docker.errorCode == "MANIFEST_UNKNOWN")
        let any = try await client.exchange(.get, registry.base + "/v2/team/app/manifests/v1",
                                            headers: ["Accept": "\(MediaType.dockerManifest), \(MediaType.ociManifest);q=0.5"])
        #expect(any.status == 200)

        // The store references the config and layer from the manifest, so prune keeps them.
        let report = try registry.store.prune()
        #expect(report.removed.isEmpty)

        // Errors.
        let unknownTag = try await client.exchange(.get, registry.base + "/v2/team/app/manifests/nope")
        #expect(unknownTag.status == 404 && unknownTag.errorCode == "MANIFEST_UNKNOWN")
        let unknownRepo = try await client.exchange(.get, registry.base + "/v2/team/other/manifests/v1")
        #expect(unknownRepo.status == 404 && unknownRepo.errorCode == "NAME_UNKNOWN")
        let invalid = try await client.exchange(.put, registry.base + "/v2/team/app/manifests/v2",
                                                headers: ["Content-Type": MediaType.ociManifest], body: Array("{not json".utf8))
        #expect(invalid.status == 400 && invalid.errorCode == "MANIFEST_INVALID")
        let wrongDigest = try await client.exchange(.put, registry.base + "/v2/team/app/manifests/\(Digest.of([1]))",
                                                    headers: ["Content-Type": MediaType.ociManifest], body: bytes)
        #expect(wrongDigest.status == 400 && wrongDigest.errorCode == "DIGEST_INVALID")
        var dangling = try JSONDecoder().decode(ImageManifest.self, from: Data(bytes))
        dangling.layers[0].digest = Digest.of(Array("missing layer".utf8))
        let missingBlob = try await client.exchange(.put, registry.base + "/v2/team/app/manifests/v3",
                                                    headers: ["Content-Type": MediaType.ociManifest], body: ImageDocument.encode(dangling))
        #expect(missingBlob.status == 400 && missingBlob.errorCode == "MANIFEST_BLOB_UNKNOWN")
        let oversized = try await client.exchange(.put, registry.base + "/v2/team/app/manifests/v4",
                                                  headers: ["Content-Type": MediaType.ociManifest],
                                                  body: Array(repeating: 0x20, count: ImageDocument.maximumManifestBytes + 1))
        #expect(oversized.status == 413 || oversized.status == 400, "\(oversized.status)")

        // Delete by tag, then by digest.
        let deleteTag = try await client.exchange(.delete, registry.base + "/v2/team/app/manifests/v1")
        #expect(deleteTag.status == 202)
        #expect(try await client.exchange(.get, registry.base + "/v2/team/app/manifests/v1").status == 404)
        #expect(try await client.exchange(.get, registry.base + "/v2/team/app/manifests/\(digest)").status == 200)
        let deleteDigest = try await client.exchange(.delete, registry.base + "/v2/team/app/manifests/\(digest)")
        #expect(deleteDigest.status == 202)
        let gone = try await client.exchange(.get, registry.base + "/v2/team/app/manifests/\(digest)")
        #expect(gone.status == 404 && gone.errorCode == "MANIFEST_UNKNOWN")
        await registry.stop()
    }

    @Test func manifestWithoutMediaTypeTakesContentType() async throws {
        // umoci writes manifests with no mediaType field.
        let registry = try RegistryFixture()
        let (bytes, digest) = try await pushImage(registry, repository: "umoci", mediaType: nil)
        #expect(!String(decoding: bytes, as: UTF8.self).contains("mediaType\":\"application/vnd.oci.image.manifest"))
        let put = try await client.exchange(.put, registry.base + "/v2/umoci/manifests/latest",
                                            headers: ["Content-Type": MediaType.ociManifest], body: bytes)
        #expect(put.status == 201, "\(put.text)")
        let get = try await client.exchange(.get, registry.base + "/v2/umoci/manifests/latest")
        #expect(get.headers["Content-Type"] == MediaType.ociManifest)
        #expect(get.headers["Docker-Content-Digest"] == digest.description)
        await registry.stop()
    }

    @Test func tagsListPaginatesInLexicalOrder() async throws {
        let registry = try RegistryFixture()
        let (bytes, _) = try await pushImage(registry, repository: "paged")
        let tags = ["v10", "v2", "A", "latest", "v1", "_z", "beta"]
        for tag in tags {
            let put = try await client.exchange(.put, registry.base + "/v2/paged/manifests/\(tag)", headers: ["Content-Type": MediaType.ociManifest], body: bytes)
            #expect(put.status == 201)
        }
        struct TagList: Decodable { var name: String; var tags: [String] }
        let sorted = tags.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let all = try await client.exchange(.get, registry.base + "/v2/paged/tags/list")
        #expect(try all.json(TagList.self).tags == sorted)
        #expect(try all.json(TagList.self).name == "paged")
        #expect(all.headers["Link"] == nil)

        var collected: [String] = []
        var next: String? = "/v2/paged/tags/list?n=3"
        var pages = 0
        while let target = next {
            let page = try await client.exchange(.get, registry.base + target)
            let list = try page.json(TagList.self)
            #expect(list.tags.count <= 3)
            collected += list.tags
            pages += 1
            next = page.headers["Link"].flatMap { link in
                link.split(separator: ">").first.map { String($0.dropFirst()) }
            }
        }
        #expect(collected == sorted)
        #expect(pages == 3)
        let afterLast = try await client.exchange(.get, registry.base + "/v2/paged/tags/list?last=latest")
        #expect(try afterLast.json(TagList.self).tags == Array(sorted.drop { $0 != "latest" }.dropFirst()))
        let none = try await client.exchange(.get, registry.base + "/v2/paged/tags/list?n=0")
        #expect(try none.json(TagList.self).tags == [])
        let unknown = try await client.exchange(.get, registry.base + "/v2/nothing/here/tags/list")
        #expect(unknown.status == 404 && unknown.errorCode == "NAME_UNKNOWN")

        struct Catalog: Decodable { var repositories: [String] }
        let catalog = try await client.exchange(.get, registry.base + "/v2/_catalog")
        #expect(try catalog.json(Catalog.self).repositories == ["paged"])
        await registry.stop()
    }

    @Test func repositoryNamesFollowTheSpec() async throws {
        let registry = try RegistryFixture()
        for bad in ["UPPER/case", "a//b", "-lead", "trail-", "a..b", "a/b_", "x___y"] {
            let response = try await client.exchange(.get, registry.base + "/v2/\(bad)/tags/list")
            #expect(response.status == 400 && response.errorCode == "NAME_INVALID", "\(bad): \(response.status) \(response.text)")
        }
        for good in ["a", "a/b/c", "a.b", "a_b", "a__b", "a---b", "0/1"] {
            #expect(RepositoryName.isValid(good), "\(good)")
        }
        #expect(!RepositoryName.isValid(String(repeating: "a", count: 256)))
        #expect(RepositoryName.isValidTag("v1.0-rc_1"))
        #expect(!RepositoryName.isValidTag(".hidden"))
        #expect(!RepositoryName.isValidTag(String(repeating: "t", count: 129)))
        await registry.stop()
    }

    @Test func concurrentUploadsOfTheSameBlob() async throws {
        let registry = try RegistryFixture()
        let blob = pattern(3_000_000, seed: 5)
        let digest = Digest.of(blob)
        let base = registry.base
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<6 {
                group.addTask {
                    let client = HTTPClient()
                    if index % 2 == 0 {
                        return try await client.exchange(.post, base + "/v2/race/blobs/uploads/?digest=\(digest)", body: blob).status
                    }
                    let start = try await client.exchange(.post, base + "/v2/race/blobs/uploads/")
                    let patch = try await client.exchange(.patch, base + start.headers["Location"]!, body: blob)
                    return try await client.exchange(.put, base + patch.headers["Location"]! + "&digest=\(digest)").status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 201, count: 6))
        #expect(try registry.store.read(digest, maximumBytes: 4 << 20) == blob)
        #expect(try registry.store.blobs() == [digest])
        await registry.stop()
    }

    @Test func blobSizeLimit() async throws {
        var configuration = RegistryServer.Configuration()
        configuration.maximumBlobBytes = 100_000
        let registry = try RegistryFixture(configuration: configuration)
        let blob = pattern(150_000)
        let response = try await client.exchange(.post, registry.base + "/v2/big/blobs/uploads/?digest=\(Digest.of(blob))", body: blob)
        #expect(response.status == 413 && response.errorCode == "SIZE_INVALID", "\(response.status) \(response.text)")
        #expect(try registry.store.blobs().isEmpty)
        await registry.stop()
    }

    @Test(.enabled(if: curlPath != nil, "needs curl"))
    func curlUploadWithExpectContinueDoesNotStall() async throws {
        let registry = try RegistryFixture()
        let directory = try TemporaryDirectory()
        let blob = pattern(4 << 20, seed: 11)
        let digest = Digest.of(blob)
        let file = directory.file("blob.bin")
        try Data(blob).write(to: URL(fileURLWithPath: file))
        // curl sends `Expect: 100-continue` for bodies over 1 MiB and waits 1 s for it.
        let escaped = digest.description.replacingOccurrences(of: ":", with: "%3A")
        let post = try await run(curlPath!, ["-sS", "-X", "POST", "--data-binary", "@" + file, "-H", "Content-Type: application/octet-stream",
                                             "-w", "%{http_code}|%{time_total}", "-o", "/dev/null",
                                             registry.base + "/v2/curl/blobs/uploads/?digest=\(escaped)"])
        let parts = post.output.split(separator: "|")
        #expect(parts.first == "201", "curl: \(post.output) \(post.error)")
        let seconds = Double(parts.last ?? "9") ?? 9
        #expect(seconds < 0.9, "curl took \(seconds) s: it waited for 100 Continue")
        #expect(registry.store.contains(digest))

        // Session upload with PUT -T (also 100-continue).
        let start = try await client.exchange(.post, registry.base + "/v2/curl/blobs/uploads/")
        let other = pattern(2 << 20, seed: 12)
        try Data(other).write(to: URL(fileURLWithPath: file))
        let put = try await run(curlPath!, ["-sS", "-T", file, "-w", "%{http_code}|%{time_total}", "-o", "/dev/null",
                                            registry.base + start.headers["Location"]! + "&digest=\(Digest.of(other))"])
        let putParts = put.output.split(separator: "|")
        #expect(putParts.first == "201", "curl: \(put.output) \(put.error)")
        #expect((Double(putParts.last ?? "9") ?? 9) < 0.9, "curl PUT stalled: \(put.output)")
        #expect(registry.store.contains(Digest.of(other)))
        await registry.stop()
    }

    @Test func basicAuthentication() async throws {
        var configuration = RegistryServer.Configuration()
        configuration.authenticator = RegistryAuthenticator(users: ["alice": "s3cret"])
        let registry = try RegistryFixture(configuration: configuration)
        let anonymous = try await client.exchange(.get, registry.base + "/v2/")
        #expect(anonymous.status == 401 && anonymous.errorCode == "UNAUTHORIZED")
        #expect(anonymous.headers["WWW-Authenticate"]?.hasPrefix("Basic realm=") == true)
        let wrong = try await client.exchange(.get, registry.base + "/v2/", headers: ["Authorization": RegistryClient.basic("alice", "nope")])
        #expect(wrong.status == 401)
        let right = try await client.exchange(.get, registry.base + "/v2/", headers: ["Authorization": RegistryClient.basic("alice", "s3cret")])
        #expect(right.status == 200)
        // An upload refused before its body: 401 instead of 100 Continue.
        let blob = pattern(1000)
        let refused = try await client.exchange(.post, registry.base + "/v2/x/blobs/uploads/?digest=\(Digest.of(blob))", body: blob)
        #expect(refused.status == 401)
        #expect(try registry.store.blobs().isEmpty)
        await registry.stop()
    }

    @Test func byteRangeParsing() {
        #expect(ByteRange.resolve(nil, length: 10) == .whole)
        #expect(ByteRange.resolve("bytes=0-4", length: 10) == .partial(ByteRange(start: 0, end: 4)))
        #expect(ByteRange.resolve("bytes=5-100", length: 10) == .partial(ByteRange(start: 5, end: 9)))
        #expect(ByteRange.resolve("bytes=-3", length: 10) == .partial(ByteRange(start: 7, end: 9)))
        #expect(ByteRange.resolve("bytes=10-", length: 10) == .unsatisfiable)
        #expect(ByteRange.resolve("bytes=0-1,3-4", length: 10) == .whole)
        #expect(ByteRange.resolve("items=0-1", length: 10) == .whole)
        #expect(ByteRange.parseUploadRange("0-99") == ByteRange(start: 0, end: 99))
        #expect(ByteRange.parseUploadRange("bytes 100-199/*") == ByteRange(start: 100, end: 199))
        #expect(ByteRange.parseUploadRange("9-3") == nil)
    }
}

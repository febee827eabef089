import TestSupport
import Foundation
import HTTP
import Images
import Net
@testable import Registry
import Testing

/// Records progress events from concurrent transfers.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [BlobProgress] = []
    func record(_ event: BlobProgress) { lock.withLock { events.append(event) } }
    var all: [BlobProgress] { lock.withLock { events } }
}

@Suite("Image references")
struct ImageReferenceTests {
    @Test func dockerGrammar() throws {
        let local = try ImageReference(parsing: "localhost:5000/x")
        #expect(local.registry == "localhost:5000" && local.repository == "x" && local.tag == "latest")
        let numeric = try ImageReference(parsing: "127.0.0.1:5000/team/app:v1.2")
        #expect(numeric.registry == "127.0.0.1:5000" && numeric.repository == "team/app" && numeric.tag == "v1.2")
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let pinned = try ImageReference(parsing: "registry.example/app:1@\(digest)")
        #expect(pinned.registry == "registry.example" && pinned.tag == "1" && pinned.digest?.description == digest)
        #expect(pinned.manifestReference == digest)
        let onlyDigest = try ImageReference(parsing: "app@\(digest)", defaultRegistry: "10.0.0.1:5000")
        #expect(onlyDigest.registry == "10.0.0.1:5000" && onlyDigest.tag == nil)
        let hub = try ImageReference(parsing: "busybox", defaultRegistry: ImageReference.dockerHub)
        #expect(hub.repository == "library/busybox" && hub.description == "docker.io/library/busybox:latest")
        #expect(hub.familiarDescription(defaultRegistry: ImageReference.dockerHub) == "busybox:latest")
        let short = try ImageReference(parsing: "team/app")
        #expect(short.registry == ImageReference.shoalDefaultRegistry && short.repository == "team/app")
        #expect(short.localTag == "127.0.0.1:5000/team/app:latest")
        for bad in ["", "UPPER", "app:", "app:bad/tag", "app@sha256:123", "host:99999/app", "a//b", ":tag"] {
            #expect(throws: ImageReferenceError.self, "\(bad)") { try ImageReference(parsing: bad) }
        }
    }

    @Test func challenges() {
        let bearer = AuthenticationChallenge(parsing: #"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#)
        #expect(bearer?.scheme == "bearer")
        #expect(bearer?.parameters["realm"] == "https://auth.example/token")
        #expect(bearer?.parameters["scope"] == "repository:a/b:pull,push")
        let basic = AuthenticationChallenge(parsing: #"Basic realm="x", charset="UTF-8""#)
        #expect(basic?.scheme == "basic" && basic?.parameters["charset"] == "UTF-8")
    }
}

@Suite("Registry client against our server", .timeLimit(.minutes(5)), .enabled(if: busyboxPath != nil && tarPath != nil, "needs busybox-static and tar"))
struct RegistryClientTests {
    @Test func pushThenPullRoundTripWithDedupAndMount() async throws {
        let registry = try RegistryFixture()
        let directory = try TemporaryDirectory()
        let source = try ContentStore(root: directory.file("source"))
        let image = try await importBusyboxImage(into: source, tag: "busybox:test", in: directory)
        let client = RegistryClient()
        let reference = try ImageReference(parsing: "\(registry.hostPort)/library/busybox:1")

        let pushLog = ProgressLog()
        let pushed = try await client.push(from: source, localName: "busybox:test", to: reference) { pushLog.record($0) }
        #expect(pushed.manifest == image.manifest)
        #expect(pushed.existingBlobs == 0 && pushed.mountedBlobs == 0)
        #expect(pushLog.all.contains { $0.digest == image.layer && $0.state == .complete })

        // A fresh store: everything downloads, digests match end to end.
        let destination = try ContentStore(root: directory.file("destination"))
        let pullLog = ProgressLog()
        let pulled = try await RegistryClient().pull(reference, into: destination) { pullLog.record($0) }
        #expect(pulled.manifest == image.manifest && pulled.config == image.config && pulled.layers == [image.layer])
        #expect(pulled.reusedBlobs == 0)
        #expect(try destination.resolve(tag: reference.localTag) == image.manifest)
        for digest in [image.manifest, image.config, image.layer] {
            #expect(try destination.read(digest, maximumBytes: 64 << 20) == source.read(digest, maximumBytes: 64 << 20))
        }
        let layerEvents = pullLog.all.filter { $0.digest == image.layer }
        // Announced as waiting before any transfer, then transferred and completed.
        #expect(layerEvents.map(\.state).prefix(2) == [.waiting, .transferring] && layerEvents.last?.state == .complete)
        let firstTransfer = pullLog.all.firstIndex { $0.state != .waiting } ?? 0
        #expect(pullLog.all.prefix(firstTransfer).count == 2, "config and layer announced before any transfer")
        #expect(layerEvents.last?.completedBytes == layerEvents.last?.totalBytes)
        // The pulled image survives a prune: the manifest references its blobs.
        #expect(try destination.prune().removed.isEmpty)

        // Pull again: nothing to download.
        let again = try await RegistryClient().pull(reference, into: destination)
        #expect(again.reusedBlobs == 2 && again.downloadedBytes == 0)
        // By digest.
        let byDigest = try ImageReference(parsing: "\(registry.hostPort)/library/busybox@\(image.manifest)")
        #expect(try await RegistryClient().pull(byDigest, into: destination).manifest == image.manifest)

        // Push again to the same repository: the registry has every blob.
        let repeated = try await client.push(from: source, localName: "busybox:test", to: reference)
        #expect(repeated.existingBlobs == 2 && repeated.uploadedBytes == 0)
        // Another repository: our registry shares blobs across repositories,
        // so HEAD finds them (mounting is exercised against distribution).
        let other = try ImageReference(parsing: "\(registry.hostPort)/mirror/busybox:1")
        let mirrored = try await client.push(from: source, localName: "busybox:test", to: other)
        #expect(mirrored.existingBlobs == 2 && mirrored.uploadedBytes == 0)
        await client.shutdown()
        await registry.stop()
    }

    @Test func chunkedPushAndIndexFollowing() async throws {
        let registry = try RegistryFixture()
        let directory = try TemporaryDirectory()
        let source = try ContentStore(root: directory.file("source"))
        let image = try await importBusyboxImage(into: source, tag: "busybox:test", in: directory)
        // A two-platform index: arm64 points at a manifest that is not stored, amd64 at ours.
        let manifestSize = try source.size(of: image.manifest)
        let index = ImageIndex(manifests: [
            Descriptor(mediaType: MediaType.ociManifest, digest: Digest.of(Array("arm".utf8)), size: 10,
                       platform: Platform(architecture: "arm64", os: "linux")),
            Descriptor(mediaType: MediaType.ociManifest, digest: image.manifest, size: manifestSize, platform: .linuxAMD64),
        ])
        let indexDigest = try source.write(ImageDocument.encode(index))

        var configuration = RegistryClient.Configuration()
        configuration.uploadChunkBytes = 64 * 1024
        let client = RegistryClient(configuration: configuration)
        // The index names an arm64 manifest the registry lacks: refused.
        let reference = try ImageReference(parsing: "\(registry.hostPort)/multi:latest")
        await #expect(throws: RegistryResponseError.self) {
            _ = try await client.push(from: source, manifest: indexDigest, to: reference)
        }
        // Only amd64: accepted, and a pull follows the index to it.
        let amd64Only = try source.write(ImageDocument.encode(ImageIndex(manifests: [index.manifests[1]])))
        _ = try await client.push(from: source, manifest: amd64Only, to: reference)
        let destination = try ContentStore(root: directory.file("destination"))
        let pulled = try await RegistryClient().pull(reference, into: destination)
        #expect(pulled.index == amd64Only && pulled.manifest == image.manifest)
        await #expect(throws: ImageDocumentError.self) {
            _ = try await RegistryClient().pull(reference, into: destination, platform: Platform(architecture: "s390x", os: "linux"))
        }
        await client.shutdown()
        await registry.stop()
    }

    @Test func tamperedBlobIsRefusedAndNothingStored() async throws {
        let registry = try RegistryFixture()
        let directory = try TemporaryDirectory()
        let source = try ContentStore(root: directory.file("source"))
        let image = try await importBusyboxImage(into: source, tag: "busybox:test", in: directory)
        let reference = try ImageReference(parsing: "\(registry.hostPort)/tampered:1")
        _ = try await RegistryClient().push(from: source, localName: "busybox:test", to: reference)
        // Flip one byte of the layer in the registry's store, keeping its size.
        let path = registry.store.path(for: image.layer)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let destination = try ContentStore(root: directory.file("destination"))
        await #expect(throws: ContentStoreError.self) {
            _ = try await RegistryClient().pull(reference, into: destination)
        }
        #expect(!destination.contains(image.layer))
        #expect(try destination.resolve(tag: reference.localTag) == nil)
        let ingest = try FileManager.default.contentsOfDirectory(atPath: destination.root + "/ingest")
        #expect(ingest.isEmpty)
        await registry.stop()
    }

    @Test func basicAndTokenAuthentication() async throws {
        let directory = try TemporaryDirectory()
        let source = try ContentStore(root: directory.file("source"))
        _ = try await importBusyboxImage(into: source, tag: "busybox:test", in: directory)
        for mode in [RegistryAuthenticator.Mode.basic, .token] {
            var serverConfiguration = RegistryServer.Configuration()
            serverConfiguration.authenticator = RegistryAuthenticator(users: ["alice": "s3cret"], mode: mode)
            let registry = try RegistryFixture(configuration: serverConfiguration)
            let reference = try ImageReference(parsing: "\(registry.hostPort)/private/busybox:1")

            // No or wrong credentials: refused with the registry's 401.
            var wrong = RegistryClient.Configuration()
            wrong.credentials = ("alice", "guess")
            for configuration in [RegistryClient.Configuration(), wrong] {
                do {
                    _ = try await RegistryClient(configuration: configuration).push(from: source, localName: "busybox:test", to: reference)
                    Issue.record("\(mode): push without valid credentials succeeded")
                } catch let error as RegistryResponseError {
                    #expect(error.status == 401, "\(mode): \(error)")
                }
            }
            var right = RegistryClient.Configuration()
            right.credentials = ("alice", "s3cret")
            let client = RegistryClient(configuration: right)
            _ = try await client.push(from: source, localName: "busybox:test", to: reference)
            let destination = try ContentStore(root: directory.file("destination-\(mode)"))
            _ = try await client.pull(reference, into: destination)
            #expect(try destination.resolve(tag: reference.localTag) != nil)
            if mode == .token {
                // The token endpoint itself demands the password.
                let anonymous = try await HTTPClient().exchange(.get, registry.base + "/token?service=shoal-registry")
                #expect(anonymous.status == 401)
            }
            await client.shutdown()
            await registry.stop()
        }
    }
}

@Suite("Registry over TLS", .timeLimit(.minutes(2)))
struct RegistryTLSTests {
    @Test func pushAndPullOverTLSWithBasicAuth() async throws {
        let authority = try CertificateAuthority.createRoot(clusterID: "registry-tests")
        let (certificate, key) = try authority.issueNodeCredentials(nodeID: "registry-1", role: .manager)
        var serverTLS = TLSConfiguration(certificateChain: [certificate, authority.certificate], privateKey: key, trustedRoots: [authority.certificate])
        serverTLS.clientCertificates = .optional
        let directory = try TemporaryDirectory()
        let store = try ContentStore(root: directory.file("registry"))
        var configuration = RegistryServer.Configuration()
        configuration.authenticator = RegistryAuthenticator(users: ["bob": "pw"])
        let server = try RegistryServer(store: store, configuration: configuration)
        let address = try server.listen(on: .loopbackIPv4(), tls: TLSContext(serverTLS, side: .server))

        let source = try ContentStore(root: directory.file("source"))
        let blob = pattern(200_000)
        let layer = try source.write(blob)
        let config = try source.write(ImageDocument.encode(ImageConfig(rootfs: .init(diffIDs: [layer]))))
        let manifest = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: config, size: try source.size(of: config)),
                                     layers: [Descriptor(mediaType: MediaType.ociLayer, digest: layer, size: Int64(blob.count))])
        let manifestDigest = try source.write(ImageDocument.encode(manifest))

        var clientConfiguration = RegistryClient.Configuration()
        clientConfiguration.tls = try TLSContext(TLSConfiguration(certificateChain: [], privateKey: nil, trustedRoots: [authority.certificate]), side: .client)
        clientConfiguration.credentials = ("bob", "pw")
        let client = RegistryClient(configuration: clientConfiguration)
        #expect(client.baseURL(address.description).hasPrefix("https://"))
        let reference = try ImageReference(parsing: "\(address)/secure/app:1")
        _ = try await client.push(from: source, manifest: manifestDigest, to: reference)
        let destination = try ContentStore(root: directory.file("destination"))
        let pulled = try await client.pull(reference, into: destination)
        #expect(pulled.manifest == manifestDigest)
        #expect(try destination.read(layer, maximumBytes: 1 << 20) == blob)
        // A client that does not trust the CA is refused at the handshake.
        let stranger = try CertificateAuthority.createRoot(clusterID: "other")
        var untrusting = RegistryClient.Configuration()
        untrusting.tls = try TLSContext(TLSConfiguration(certificateChain: [], privateKey: nil, trustedRoots: [stranger.certificate]), side: .client)
        await #expect(throws: (any Error).self) {
            _ = try await RegistryClient(configuration: untrusting).pull(reference, into: destination)
        }
        await client.shutdown()
        await server.shutdown(gracePeriod: .milliseconds(300))
    }
}

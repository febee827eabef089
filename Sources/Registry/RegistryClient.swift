import Foundation
import HTTP
import Images
import Net
#if canImport(Glibc)
import Glibc
#endif

/// Where a blob stands during a pull or push, for progress output.
public struct BlobProgress: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// Queued behind the concurrency limit.
        case waiting
        /// Already in the destination (local store on pull, registry on push): nothing sent.
        case alreadyExists
        /// Pushed by cross-repository mount: nothing sent.
        case mounted
        case transferring
        /// Verified and stored.
        case complete
    }

    public var digest: Digest
    /// `config` or `layer`.
    public var kind: String
    public var totalBytes: Int64
    public var completedBytes: Int64
    public var state: State
}

/// What a pull stored.
public struct PullResult: Sendable, Equatable {
    public var reference: ImageReference
    /// The platform manifest, now tagged in the store as ``ImageReference/localTag``.
    public var manifest: Digest
    /// The index the tag named, when the image is multi-platform.
    public var index: Digest?
    public var config: Digest
    public var layers: [Digest]
    /// Bytes downloaded (blobs already stored are not counted).
    public var downloadedBytes: Int64
    /// Blobs found in the store already.
    public var reusedBlobs: Int
}

/// What a push sent.
public struct PushResult: Sendable, Equatable {
    public var reference: ImageReference
    /// The pushed manifest's digest (as the registry answered it).
    public var manifest: Digest
    public var uploadedBytes: Int64
    /// Blobs the registry had already.
    public var existingBlobs: Int
    /// Blobs mounted from another repository.
    public var mountedBlobs: Int
}

/// Something a registry client cannot do, with the next step.
public enum RegistryClientError: Error, Sendable, CustomStringConvertible {
    case manifestDigestMismatch(reference: String, expected: Digest, actual: Digest)
    case notAnImageManifest(reference: String, mediaType: String)
    case missingLocation(request: String)
    case badTokenResponse(realm: String, reason: String)
    case localImageNotFound(String)

    public var description: String {
        switch self {
        case let .manifestDigestMismatch(reference, expected, actual):
            return "the manifest of \(reference) should hash to \(expected) but hashes to \(actual): the registry served different bytes; nothing was stored"
        case let .notAnImageManifest(reference, mediaType):
            return "\(reference) is \(mediaType), not an image manifest or index"
        case let .missingLocation(request):
            return "\(request) answered without a Location for the upload: the registry does not follow the distribution spec"
        case let .badTokenResponse(realm, reason):
            return "the token service \(realm) answered unusably: \(reason)"
        case let .localImageNotFound(name):
            return "no image \(name) in the local store: pull, import or tag it first (shoal image ls lists them)"
        }
    }
}

/// A client of the OCI Distribution API: pulls images into a
/// ``ContentStore`` and pushes them from one.
///
/// Pull resolves the tag (following an index to the wanted platform),
/// fetches config and layers concurrently (at most
/// ``Configuration/maximumConcurrentTransfers`` at once) straight into
/// ``BlobWriter``s that verify size and digest while the bytes stream, and
/// skips blobs the store already has. Push asks the registry first (HEAD),
/// mounts from another repository of the same registry when this client saw
/// the blob there, and otherwise uploads (POST, then one PUT with the
/// whole blob, or PATCH chunks then PUT); manifests go last.
///
/// Authentication: HTTP basic, or the bearer-token flow a
/// `WWW-Authenticate: Bearer realm=...,service=...` challenge starts
/// (tokens cached per scope). Registries listed in
/// ``Configuration/insecureRegistries``, and loopback ones when no TLS
/// context (CA) is configured, are spoken to over plain HTTP; others over
/// TLS, verified against ``Configuration/tls``.
public final class RegistryClient: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// User name and password for basic auth and token requests.
        public var credentials: (user: String, password: String)?
        /// Trust for `https` registries (their CA).
        public var tls: TLSContext?
        /// `host:port` of registries spoken to over plain HTTP (loopback always is).
        public var insecureRegistries: Set<String> = []
        /// Blobs transferred at once in a pull or push.
        public var maximumConcurrentTransfers = 3
        /// Push uploads in PATCH chunks of this size; nil: one PUT per blob.
        public var uploadChunkBytes: Int?
        /// Bytes read from a local blob file per body write.
        public var readChunkBytes = 1 << 20
        public var http: HTTPClient.Configuration = {
            var configuration = HTTPClient.Configuration()
            configuration.maxRedirects = 5
            configuration.responseTimeout = .seconds(300)
            // Layers are large: fewer, bigger reads cut per-chunk overhead (async hops, write calls).
            configuration.readChunkBytes = 256 * 1024
            return configuration
        }()

        public init() {}
    }

    public let configuration: Configuration
    let http: HTTPClient
    private let lock = NSLock()
    /// Per registry: the challenge it sent, if any.
    private var challenges: [String: AuthenticationChallenge] = [:]
    /// Per registry and scope: bearer tokens.
    private var tokens: [String: String] = [:]
    /// Per registry: which repository each blob was last seen in (for mounts).
    private var blobLocations: [String: [Digest: String]] = [:]

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        var httpConfiguration = configuration.http
        httpConfiguration.tls = configuration.tls ?? httpConfiguration.tls
        http = HTTPClient(configuration: httpConfiguration)
    }

    /// Closes the pooled keep-alive connections (a later call opens new ones).
    public func shutdown() async {
        await http.shutdown()
    }

    /// Keep-alive connections pooled now (tests: a stopped owner holds none).
    public var idleConnectionCount: Int { http.idleConnectionCount }

    static let manifestAccept = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest]
        .joined(separator: ", ")

    // MARK: URLs and requests

    /// `http://host:port` or `https://host:port` for a registry.
    func baseURL(_ registry: String) -> String {
        var host = registry
        if host == ImageReference.dockerHub { host = "registry-1.docker.io" }
        let hostOnly = host.hasPrefix("[") ? String(host.prefix { $0 != "]" }.dropFirst()) : String(host.split(separator: ":").first ?? "")
        let loopback = hostOnly == "localhost" || hostOnly.hasPrefix("127.") || hostOnly == "::1"
        // Loopback registries speak plain HTTP unless the client was given a CA to check them with.
        let insecure = configuration.insecureRegistries.contains(registry) || (loopback && configuration.tls == nil)
        return (insecure ? "http://" : "https://") + host
    }

    func url(_ registry: String, _ target: String) throws -> HTTPURL {
        if target.hasPrefix("http://") || target.hasPrefix("https://") { return try HTTPURL(target) }
        return try HTTPURL(baseURL(registry) + (target.hasPrefix("/") ? target : "/" + target))
    }

    private func authorizationHeader(registry: String, scope: String?) -> String? {
        lock.withLock {
            switch challenges[registry]?.scheme {
            case "bearer"?:
                return tokens[registry + " " + (scope ?? "")].map { "Bearer " + $0 }
            case "basic"?:
                return configuration.credentials.map { Self.basic($0.user, $0.password) }
            default:
                return nil
            }
        }
    }

    static func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    /// Sends the request `make` builds (called again for the retry after a
    /// 401, so streaming bodies start over), authenticating as the registry asks.
    func send(_ registry: String, scope: String?, _ make: () throws -> HTTPClientRequest) async throws -> HTTPClientResponse {
        var request = try make()
        if let authorization = authorizationHeader(registry: registry, scope: scope) {
            request.headers.replaceOrAdd(name: "Authorization", value: authorization)
        }
        let response = try await http.execute(request)
        guard response.status == .unauthorized, let field = response.headers["WWW-Authenticate"],
              let challenge = AuthenticationChallenge(parsing: field) else { return response }
        _ = try? await response.body.collect(upTo: Self.maximumErrorBodyBytes)
        try await authenticate(registry, challenge: challenge, scope: scope ?? challenge.parameters["scope"])
        var retry = try make()
        if let authorization = authorizationHeader(registry: registry, scope: scope) {
            retry.headers.replaceOrAdd(name: "Authorization", value: authorization)
        }
        return try await http.execute(retry)
    }

    /// Answers a challenge: basic remembers to send the credentials; bearer fetches a token for `scope`.
    private func authenticate(_ registry: String, challenge: AuthenticationChallenge, scope: String?) async throws {
        lock.withLock { challenges[registry] = challenge }
        guard challenge.scheme == "bearer" else { return }
        guard let realm = challenge.parameters["realm"] else {
            throw RegistryClientError.badTokenResponse(realm: "(none)", reason: "the Bearer challenge names no realm")
        }
        var query: [String] = []
        if let service = challenge.parameters["service"] { query.append("service=" + PercentEncoding.encode(service)) }
        for part in (scope ?? "").split(separator: " ") { query.append("scope=" + PercentEncoding.encode(String(part))) }
        if let credentials = configuration.credentials { query.append("account=" + PercentEncoding.encode(credentials.user)) }
        let target = realm + (query.isEmpty ? "" : (realm.contains("?") ? "&" : "?") + query.joined(separator: "&"))
        var request = HTTPClientRequest(url: try HTTPURL(target))
        if let credentials = configuration.credentials {
            request.headers.add(name: "Authorization", value: Self.basic(credentials.user, credentials.password))
        }
        let response = try await http.execute(request)
        let body = try await response.body.collect(upTo: Self.maximumTokenBodyBytes)
        guard response.status == .ok else {
            throw RegistryResponseError(request: "GET \(realm)", status: response.status.code, body: body)
        }
        struct TokenBody: Decodable { var token: String?; var access_token: String? }
        guard let decoded = try? JSONDecoder().decode(TokenBody.self, from: Data(body)),
              let token = decoded.token ?? decoded.access_token, !token.isEmpty else {
            throw RegistryClientError.badTokenResponse(realm: realm, reason: "no token in \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        lock.withLock { tokens[registry + " " + (scope ?? "")] = token }
    }

    /// Learns how the registry authenticates (`GET /v2/`) and, for bearer
    /// registries, gets the token for `scope` before any large body is sent.
    func prepare(_ registry: String, scope: String) async throws {
        let response = try await send(registry, scope: scope) { HTTPClientRequest(url: try url(registry, "/v2/")) }
        let body = try await response.body.collect(upTo: Self.maximumErrorBodyBytes)
        guard response.status == .ok else {
            throw RegistryResponseError(request: "GET \(baseURL(registry))/v2/", status: response.status.code, body: body)
        }
    }

    static let maximumErrorBodyBytes = 64 * 1024
    static let maximumTokenBodyBytes = 1 << 20

    /// Throws the registry's error unless the status is one of `expected`; reads the body on error.
    private func check(_ response: HTTPClientResponse, _ what: String, _ expected: [Int]) async throws {
        guard !expected.contains(response.status.code) else { return }
        let body = (try? await response.body.collect(upTo: Self.maximumErrorBodyBytes)) ?? []
        throw RegistryResponseError(request: what, status: response.status.code, body: body)
    }

    private func drain(_ response: HTTPClientResponse) async {
        _ = try? await response.body.collect(upTo: Self.maximumErrorBodyBytes)
    }

    // MARK: Manifests

    /// A manifest or index as fetched, digest verified.
    public struct FetchedManifest: Sendable {
        public var bytes: [UInt8]
        public var mediaType: String?
        public var digest: Digest
    }

    /// Fetches a manifest by tag or digest and checks its digest (against the
    /// reference's digest, else against `Docker-Content-Digest`).
    public func fetchManifest(registry: String, repository: String, reference: String) async throws -> FetchedManifest {
        let scope = "repository:\(repository):pull"
        let what = "GET \(baseURL(registry))/v2/\(repository)/manifests/\(reference)"
        let response = try await send(registry, scope: scope) {
            HTTPClientRequest(url: try url(registry, "/v2/\(repository)/manifests/\(reference)"), headers: ["Accept": Self.manifestAccept])
        }
        try await check(response, what, [200])
        let bytes = try await response.body.collect(upTo: ImageDocument.maximumManifestBytes)
        let actual = Digest.of(bytes)
        let expected = (try? Digest(parsing: reference)) ?? response.headers["Docker-Content-Digest"].flatMap { try? Digest(parsing: $0) }
        if let expected, expected != actual {
            throw RegistryClientError.manifestDigestMismatch(reference: "\(registry)/\(repository):\(reference)", expected: expected, actual: actual)
        }
        let mediaType = response.headers["Content-Type"].map { String($0.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespaces) }
        return FetchedManifest(bytes: bytes, mediaType: mediaType, digest: actual)
    }

    /// The digest `reference` names on its registry now (a `HEAD` of the
    /// manifest: its `Docker-Content-Digest`; a `GET` if the registry sends
    /// none), without downloading the image: an index's digest for a
    /// multi-platform image, as ``PullResult/index`` records it.
    public func currentDigest(of reference: ImageReference) async throws -> Digest {
        let registry = reference.registry, repository = reference.repository
        let path = "/v2/\(repository)/manifests/\(reference.manifestReference)"
        let response = try await send(registry, scope: "repository:\(repository):pull") {
            HTTPClientRequest(method: .head, url: try url(registry, path), headers: ["Accept": Self.manifestAccept])
        }
        try await check(response, "HEAD \(baseURL(registry))\(path)", [200])
        await drain(response)
        if let digest = response.headers["Docker-Content-Digest"].flatMap({ try? Digest(parsing: $0) }) { return digest }
        return try await fetchManifest(registry: registry, repository: repository, reference: reference.manifestReference).digest
    }

    // MARK: Pull

    /// Pulls `reference` into `store` and tags it there as ``ImageReference/localTag``.
    public func pull(_ reference: ImageReference, into store: ContentStore, platform: Platform = .linuxAMD64,
                     progress: (@Sendable (BlobProgress) -> Void)? = nil) async throws -> PullResult {
        let registry = reference.registry, repository = reference.repository
        try await prepare(registry, scope: "repository:\(repository):pull")
        var fetched = try await fetchManifest(registry: registry, repository: repository, reference: reference.manifestReference)
        var document = try ImageDocument.decode(fetched.bytes, mediaType: fetched.mediaType)
        var indexDigest: Digest?
        if case .index(let index) = document {
            indexDigest = fetched.digest
            let chosen = try index.manifest(for: platform)
            fetched = try await fetchManifest(registry: registry, repository: repository, reference: chosen.digest.description)
            document = try ImageDocument.decode(fetched.bytes, mediaType: chosen.mediaType)
        }
        guard case .manifest(let manifest) = document else {
            throw RegistryClientError.notAnImageManifest(reference: reference.description, mediaType: fetched.mediaType ?? "an index")
        }
        guard manifest.config.size <= Int64(ImageDocument.maximumConfigBytes) else {
            throw ImageDocumentError.tooLarge(kind: "image config", sizeBytes: Int(manifest.config.size), limitBytes: ImageDocument.maximumConfigBytes)
        }
        var blobs: [(Descriptor, String)] = [(manifest.config, "config")]
        var seen: Set<Digest> = [manifest.config.digest]
        for layer in manifest.layers where seen.insert(layer.digest).inserted { blobs.append((layer, "layer")) }

        // Every blob is announced first, so a listener knows the totals before any transfer ends.
        for (descriptor, kind) in blobs {
            progress?(BlobProgress(digest: descriptor.digest, kind: kind, totalBytes: descriptor.size, completedBytes: 0, state: .waiting))
        }
        let counters = TransferCounters()
        try await forEach(blobs) { [self] descriptor, kind in
            try await self.download(registry: registry, repository: repository, descriptor: descriptor, kind: kind,
                                    into: store, counters: counters, progress: progress)
        }
        // The config must be one we can read before the image is tagged.
        _ = try ImageDocument.decodeConfig(try store.read(manifest.config.digest, maximumBytes: Int64(ImageDocument.maximumConfigBytes)))
        try store.write(fetched.bytes, expected: fetched.digest)
        try store.addReferences(from: fetched.digest, to: blobs.map(\.0.digest))
        try store.tag(reference.localTag, to: fetched.digest)
        lock.withLock {
            for (descriptor, _) in blobs { blobLocations[registry, default: [:]][descriptor.digest] = repository }
        }
        let totals = counters.snapshot
        return PullResult(reference: reference, manifest: fetched.digest, index: indexDigest, config: manifest.config.digest,
                          layers: manifest.layers.map(\.digest), downloadedBytes: totals.bytes, reusedBlobs: totals.skipped)
    }

    /// Runs `body` for each element, at most ``Configuration/maximumConcurrentTransfers`` at once;
    /// the first error cancels the rest.
    private func forEach<Element: Sendable>(_ elements: [Element], _ body: @escaping @Sendable (Element) async throws -> Void) async throws {
        let limit = max(1, configuration.maximumConcurrentTransfers)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var iterator = elements.makeIterator()
            for _ in 0..<limit {
                guard let element = iterator.next() else { break }
                group.addTask { try await body(element) }
            }
            while try await group.next() != nil {
                if let element = iterator.next() { group.addTask { try await body(element) } }
            }
        }
    }

    private func download(registry: String, repository: String, descriptor: Descriptor, kind: String, into store: ContentStore,
                          counters: TransferCounters, progress: (@Sendable (BlobProgress) -> Void)?) async throws {
        var state = BlobProgress(digest: descriptor.digest, kind: kind, totalBytes: descriptor.size, completedBytes: 0, state: .transferring)
        if store.contains(descriptor.digest), (try? store.size(of: descriptor.digest)) == descriptor.size {
            counters.add(skipped: 1)
            state.state = .alreadyExists
            state.completedBytes = descriptor.size
            progress?(state)
            return
        }
        progress?(state)
        let writer = try store.makeWriter(expected: descriptor.digest, expectedBytes: descriptor.size)
        let what = "GET \(baseURL(registry))/v2/\(repository)/blobs/\(descriptor.digest)"
        let response = try await send(registry, scope: "repository:\(repository):pull") {
            HTTPClientRequest(url: try url(registry, "/v2/\(repository)/blobs/\(descriptor.digest)"))
        }
        try await check(response, what, [200])
        var reported: Int64 = 0
        for try await chunk in response.body {
            try chunk.withUnsafeBytes { try writer.write($0) }
            state.completedBytes = writer.writtenBytes
            if state.completedBytes - reported >= Self.progressStepBytes {
                reported = state.completedBytes
                progress?(state)
            }
        }
        try writer.commit()
        counters.add(bytes: descriptor.size)
        state.state = .complete
        progress?(state)
    }

    /// Progress is reported at most every this many bytes of one blob.
    static let progressStepBytes: Int64 = 512 * 1024

    // MARK: Push

    /// Pushes the image `localName` names in `store` (a tag, or a digest) to `reference`.
    public func push(from store: ContentStore, localName: String, to reference: ImageReference,
                     progress: (@Sendable (BlobProgress) -> Void)? = nil) async throws -> PushResult {
        let digest: Digest
        if let resolved = try store.resolve(tag: localName) {
            digest = resolved
        } else if let parsed = try? Digest(parsing: localName), store.contains(parsed) {
            digest = parsed
        } else {
            throw RegistryClientError.localImageNotFound(localName)
        }
        return try await push(from: store, manifest: digest, to: reference, progress: progress)
    }

    /// Pushes the manifest or index `digest` from `store` and everything it references.
    public func push(from store: ContentStore, manifest digest: Digest, to reference: ImageReference,
                     progress: (@Sendable (BlobProgress) -> Void)? = nil) async throws -> PushResult {
        let registry = reference.registry, repository = reference.repository
        try await prepare(registry, scope: "repository:\(repository):pull,push")
        let counters = TransferCounters()
        let pushed = try await pushDocument(store: store, digest: digest, registry: registry, repository: repository,
                                            tag: reference.tag, counters: counters, progress: progress)
        let totals = counters.snapshot
        return PushResult(reference: reference, manifest: pushed, uploadedBytes: totals.bytes,
                          existingBlobs: totals.skipped, mountedBlobs: totals.mounted)
    }

    private func pushDocument(store: ContentStore, digest: Digest, registry: String, repository: String, tag: String?,
                              counters: TransferCounters, progress: (@Sendable (BlobProgress) -> Void)?) async throws -> Digest {
        let bytes = try store.read(digest, maximumBytes: Int64(ImageDocument.maximumManifestBytes))
        let document = try ImageDocument.decode(bytes, digest: digest)
        let mediaType: String
        switch document {
        case .manifest(let manifest):
            mediaType = manifest.mediaType ?? MediaType.ociManifest
            var blobs: [(Descriptor, String)] = [(manifest.config, "config")]
            var seen: Set<Digest> = [manifest.config.digest]
            for layer in manifest.layers where seen.insert(layer.digest).inserted { blobs.append((layer, "layer")) }
            try await forEach(blobs) { [self] descriptor, kind in
                try await self.upload(store: store, descriptor: descriptor, kind: kind, registry: registry, repository: repository,
                                      counters: counters, progress: progress)
            }
        case .index(let index):
            mediaType = index.mediaType ?? MediaType.ociIndex
            for child in index.manifests where store.contains(child.digest) {
                _ = try await pushDocument(store: store, digest: child.digest, registry: registry, repository: repository, tag: nil,
                                           counters: counters, progress: progress)
            }
        }
        let reference = tag ?? digest.description
        let what = "PUT \(baseURL(registry))/v2/\(repository)/manifests/\(reference)"
        let response = try await send(registry, scope: "repository:\(repository):pull,push") {
            HTTPClientRequest(method: .put, url: try url(registry, "/v2/\(repository)/manifests/\(reference)"),
                              headers: ["Content-Type": mediaType], body: .bytes(bytes))
        }
        try await check(response, what, [200, 201, 202])
        await drain(response)
        if let answered = response.headers["Docker-Content-Digest"].flatMap({ try? Digest(parsing: $0) }), answered != digest {
            throw RegistryClientError.manifestDigestMismatch(reference: what, expected: digest, actual: answered)
        }
        return digest
    }

    private func upload(store: ContentStore, descriptor: Descriptor, kind: String, registry: String, repository: String,
                        counters: TransferCounters, progress: (@Sendable (BlobProgress) -> Void)?) async throws {
        let digest = descriptor.digest
        let scope = "repository:\(repository):pull,push"
        var state = BlobProgress(digest: digest, kind: kind, totalBytes: descriptor.size, completedBytes: 0, state: .transferring)
        let blobPath = "/v2/\(repository)/blobs/\(digest)"

        // 1. Does the registry have it?
        let head = try await send(registry, scope: scope) { HTTPClientRequest(method: .head, url: try url(registry, blobPath)) }
        await drain(head)
        if head.status == .ok {
            counters.add(skipped: 1)
            state.state = .alreadyExists
            state.completedBytes = descriptor.size
            progress?(state)
            rememberLocation(registry, digest, repository)
            return
        }
        guard head.status == .notFound else { try await check(head, "HEAD \(baseURL(registry))\(blobPath)", [200]); return }

        // 2. Mount from where we saw it, else start an upload.
        var start = "/v2/\(repository)/blobs/uploads/"
        let mountSource = lock.withLock { blobLocations[registry]?[digest] }.flatMap { $0 == repository ? nil : $0 }
        var startScope = scope
        if let mountSource {
            start += "?mount=\(digest)&from=\(mountSource)"
            startScope += " repository:\(mountSource):pull"
        }
        let what = "POST \(baseURL(registry))\(start)"
        let started = try await send(registry, scope: startScope) {
            HTTPClientRequest(method: .post, url: try url(registry, start), headers: ["Content-Length": "0"])
        }
        try await check(started, what, [201, 202])
        await drain(started)
        if started.status == .created {
            counters.add(mounted: 1)
            state.state = .mounted
            state.completedBytes = descriptor.size
            progress?(state)
            rememberLocation(registry, digest, repository)
            return
        }
        guard var location = started.headers["Location"] else { throw RegistryClientError.missingLocation(request: what) }
        progress?(state)

        // 3. Send the bytes: PATCH chunks (always to the newest Location), then PUT with the digest.
        let blobFile = store.path(for: digest)
        let size = descriptor.size
        let readChunkBytes = configuration.readChunkBytes
        var offset: Int64 = 0
        if let chunkBytes = configuration.uploadChunkBytes, size > Int64(chunkBytes) {
            while offset < size {
                let end = min(offset + Int64(chunkBytes), size)
                let range = (offset, end)
                let currentLocation = location
                let response = try await send(registry, scope: scope) {
                    HTTPClientRequest(method: .patch, url: try url(registry, currentLocation), headers: [
                        "Content-Type": "application/octet-stream",
                        "Content-Range": "\(range.0)-\(range.1 - 1)",
                    ], body: Self.fileBody(blobFile, from: range.0, to: range.1, readChunkBytes: readChunkBytes))
                }
                try await check(response, "PATCH \(currentLocation)", [202, 204])
                await drain(response)
                guard let next = response.headers["Location"] else { throw RegistryClientError.missingLocation(request: "PATCH \(currentLocation)") }
                location = next
                offset = end
                state.completedBytes = offset
                progress?(state)
            }
        }
        let finalTarget = location + (location.contains("?") ? "&" : "?") + "digest=" + PercentEncoding.encode(digest.description)
        let remaining = (offset, size)
        let put = try await send(registry, scope: scope) {
            HTTPClientRequest(method: .put, url: try url(registry, finalTarget), headers: ["Content-Type": "application/octet-stream"],
                              body: remaining.0 == remaining.1 ? .empty : Self.fileBody(blobFile, from: remaining.0, to: remaining.1, readChunkBytes: readChunkBytes))
        }
        try await check(put, "PUT \(finalTarget)", [201, 204])
        await drain(put)
        counters.add(bytes: size)
        state.state = .complete
        state.completedBytes = size
        progress?(state)
        rememberLocation(registry, digest, repository)
    }

    private func rememberLocation(_ registry: String, _ digest: Digest, _ repository: String) {
        lock.withLock { blobLocations[registry, default: [:]][digest] = repository }
    }

    /// A body that streams bytes `start..<end` of a file.
    static func fileBody(_ path: String, from start: Int64, to end: Int64, readChunkBytes: Int) -> HTTPBody {
        .stream(length: Int(end - start)) { writer in
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            let file = BlobFile(descriptor: descriptor)
            var offset = start
            while offset < end {
                let bytes = try file.read(at: offset, count: Int(min(Int64(readChunkBytes), end - offset)))
                if bytes.isEmpty { throw POSIXError(.EIO) }
                try await writer.write(bytes)
                offset += Int64(bytes.count)
            }
        }
    }

    /// Remembers that `repository` on `registry` holds `digest` (a later push may mount it).
    public func noteBlobLocation(registry: String, repository: String, digest: Digest) {
        rememberLocation(registry, digest, repository)
    }
}

/// Totals shared by the concurrent transfers of one pull or push.
final class TransferCounters: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: Int64 = 0
    private var skipped = 0
    private var mounted = 0

    func add(bytes: Int64 = 0, skipped: Int = 0, mounted: Int = 0) {
        lock.withLock {
            self.bytes += bytes
            self.skipped += skipped
            self.mounted += mounted
        }
    }

    var snapshot: (bytes: Int64, skipped: Int, mounted: Int) { lock.withLock { (bytes, skipped, mounted) } }
}

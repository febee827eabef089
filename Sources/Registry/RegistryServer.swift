import Foundation
import HTTP
import Images
import Net
#if canImport(Glibc)
import Glibc
#endif

/// An OCI Distribution API v2 registry (`shoal registry serve`) over
/// ``HTTP/HTTPServer``, storing into a ``ContentStore``.
///
/// Blobs are content-addressed and shared by every repository (a mount
/// across repositories succeeds whenever the blob is stored). Manifests are
/// blobs too; ``RepositoryLinks`` records which repository holds which
/// manifest and its media type, and tags are store tags named
/// `repository:tag`. A manifest's push records store references to its
/// config and layers (an index's to its manifests), so the store's prune
/// keeps what a tag reaches.
///
/// Uploads stream into a ``BlobWriter`` and are verified against the
/// announced digest before anything is installed: a mismatch leaves nothing.
/// Follows the distribution spec where the reference registry does not:
/// tags list in lexical order with `n`/`last`, 416 for an out-of-order chunk,
/// `n=0` answers an empty list.
public final class RegistryServer: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// The largest blob accepted; larger uploads fail with 413 SIZE_INVALID.
        public var maximumBlobBytes: Int64 = 64 << 30
        /// Upload sessions open at once; more are refused with 429.
        public var maximumUploadSessions = 1024
        /// An upload untouched this long is dropped (its bytes with it).
        public var uploadIdleTimeout: Duration = .seconds(3600)
        /// Page size when a tags or catalog request gives no `n`, and the most a page may hold.
        public var maximumPageEntries = 1000
        /// Basic or token authentication; nil: open registry.
        public var authenticator: RegistryAuthenticator?
        /// Whether `DELETE` of manifests and tags is allowed (405 UNSUPPORTED otherwise).
        public var allowDelete = true
        /// Bytes read from a blob file per body write.
        public var blobReadChunkBytes = 1 << 20
        public var http: HTTPServer.Configuration = {
            var configuration = HTTPServer.Configuration()
            // Uploads are large: fewer, bigger reads cut per-chunk overhead.
            configuration.readChunkBytes = 256 * 1024
            return configuration
        }()

        public init() {}
    }

    public let store: ContentStore
    public let configuration: Configuration
    let links: RepositoryLinks
    let uploads: UploadSessions
    private var server: HTTPServer!
    private let lock = NSLock()
    private var listensOnTLS = false

    /// The registry over `store`; repository links live under `linksRoot`
    /// (by default `<store root>/repositories`).
    public init(store: ContentStore, linksRoot: String? = nil, configuration: Configuration = Configuration()) throws {
        self.store = store
        self.configuration = configuration
        links = try RepositoryLinks(root: linksRoot ?? store.root + "/repositories")
        uploads = UploadSessions(maximumSessions: configuration.maximumUploadSessions, idleTimeout: configuration.uploadIdleTimeout)
        server = HTTPServer(router: makeRouter(), configuration: configuration.http)
    }

    /// Listens on `address` (TLS when `tls` is given); returns the bound address.
    @discardableResult
    public func listen(on address: SocketAddress, tls: TLSContext? = nil) throws -> SocketAddress {
        if tls != nil { lock.withLock { listensOnTLS = true } }
        return try server.listen(on: address, tls: tls)
    }

    public func shutdown(gracePeriod: Duration = .seconds(5)) async {
        await server.shutdown(gracePeriod: gracePeriod)
    }

    /// Upload sessions open now.
    public var openUploadCount: Int { uploads.count }

    // MARK: Routes

    static let apiVersionHeader = ("Docker-Distribution-API-Version", "registry/2.0")
    /// Largest manifest body read (the limit ``ImageDocument`` enforces).
    static let maximumManifestBytes = ImageDocument.maximumManifestBytes

    private func makeRouter() -> HTTPRouter {
        var router = HTTPRouter()
        let unlimited = Int.max
        func add(_ method: HTTPMethod, _ pattern: String, maxBodyBytes: Int? = nil,
                 _ handler: @escaping @Sendable (RegistryServer, HTTPServerRequest) async throws -> HTTPServerResponse) {
            router.add(method, pattern, maxBodyBytes: maxBodyBytes) { [weak self] request in
                guard let self else { return .text(.serviceUnavailable, "registry stopped\n") }
                var response: HTTPServerResponse
                do {
                    response = try await handler(self, request)
                } catch let error as RegistryError {
                    response = error.response
                } catch let error as ContentStoreError {
                    response = Self.registryError(for: error).response
                }
                response.headers.replaceOrAdd(name: Self.apiVersionHeader.0, value: Self.apiVersionHeader.1)
                return response
            }
        }
        add(.get, "/v2/") { server, request in try server.apiCheck(request) }
        add(.get, "/v2") { server, request in try server.apiCheck(request) }
        add(.get, "/token") { server, request in try server.token(request) }
        add(.get, "/v2/_catalog") { server, request in try server.catalog(request) }
        // Upload routes first: `<name...>/blobs/<digest>` must not swallow them.
        add(.post, "/v2/<name...>/blobs/uploads/", maxBodyBytes: unlimited) { server, request in try await server.startUpload(request) }
        add(.post, "/v2/<name...>/blobs/uploads", maxBodyBytes: unlimited) { server, request in try await server.startUpload(request) }
        add(.patch, "/v2/<name...>/blobs/uploads/<session>", maxBodyBytes: unlimited) { server, request in try await server.patchUpload(request) }
        add(.put, "/v2/<name...>/blobs/uploads/<session>", maxBodyBytes: unlimited) { server, request in try await server.finishUpload(request) }
        add(.get, "/v2/<name...>/blobs/uploads/<session>") { server, request in try server.uploadStatus(request) }
        add(.delete, "/v2/<name...>/blobs/uploads/<session>") { server, request in try server.cancelUpload(request) }
        add(.get, "/v2/<name...>/blobs/<digest>") { server, request in try server.getBlob(request) }
        add(.delete, "/v2/<name...>/blobs/<digest>") { server, request in try server.deleteBlob(request) }
        add(.get, "/v2/<name...>/manifests/<reference>") { server, request in try server.getManifest(request) }
        add(.put, "/v2/<name...>/manifests/<reference>", maxBodyBytes: Self.maximumManifestBytes + 1) { server, request in
            try await server.putManifest(request)
        }
        add(.delete, "/v2/<name...>/manifests/<reference>") { server, request in try server.deleteManifest(request) }
        add(.get, "/v2/<name...>/tags/list") { server, request in try server.listTags(request) }
        router.fallback = { request in
            let path = request.head.rawPath
            // Routes never bind empty name components: `/v2/a//b/...` is a bad name, not a missing endpoint.
            var response = path.hasPrefix("/v2/") && path.contains("//")
                ? RegistryError.nameInvalid(String(path.prefix(300)), "empty path component").response
                : RegistryError(.unsupported, status: .notFound, "no such endpoint in the OCI Distribution API",
                                detail: "\(request.method) \(path.prefix(300))").response
            response.headers.replaceOrAdd(name: Self.apiVersionHeader.0, value: Self.apiVersionHeader.1)
            return response
        }
        return router
    }

    static func registryError(for error: ContentStoreError) -> RegistryError {
        switch error {
        case let .digestMismatch(expected, actual, _):
            return .digestInvalid("expected \(expected), content hashes to \(actual)")
        case let .sizeMismatch(_, expectedBytes, actualBytes):
            return RegistryError(.sizeInvalid, status: .badRequest, "provided length did not match content length",
                                 detail: "expected \(expectedBytes) bytes, received \(actualBytes)")
        case let .tooLarge(_, limit):
            return RegistryError(.sizeInvalid, status: .contentTooLarge, "blob exceeds the registry's size limit", detail: "limit \(limit) bytes")
        case let .blobNotFound(digest):
            return .blobUnknown(digest.description)
        case .invalidTag(let name, let reason):
            return .manifestInvalid("tag \(name): \(reason)")
        case .system, .database:
            return RegistryError(.unknown, status: .internalServerError, "storage failure", detail: "\(error)")
        }
    }

    // MARK: Authentication

    private func realm(_ request: HTTPServerRequest) -> String {
        let scheme = lock.withLock { listensOnTLS } ? "https" : "http"
        return "\(scheme)://\(request.headers["Host"] ?? "127.0.0.1")/token"
    }

    /// Checks credentials for an operation on `repository` (nil: the registry as a whole).
    private func authorize(_ request: HTTPServerRequest, repository: String?, push: Bool) throws(RegistryError) {
        guard let authenticator = configuration.authenticator else { return }
        let scope = repository.map { "repository:\($0):" + (push ? "pull,push" : "pull") }
        try authenticator.authorize(request, scope: scope, realm: realm(request))
    }

    /// The validated repository name of a request, after the auth check.
    private func repository(_ request: HTTPServerRequest, push: Bool) throws(RegistryError) -> String {
        let name = request.pathParameters["name"] ?? ""
        try authorize(request, repository: RepositoryName.isValid(name) ? name : nil, push: push)
        if let reason = RepositoryName.problem(with: name) { throw .nameInvalid(name, reason) }
        return name
    }

    private func apiCheck(_ request: HTTPServerRequest) throws(RegistryError) -> HTTPServerResponse {
        try authorize(request, repository: nil, push: false)
        return HTTPServerResponse(status: .ok, headers: ["Content-Type": "application/json"], body: .string("{}"))
    }

    /// `GET /token?service=...&scope=...` with basic credentials: a bearer token.
    private func token(_ request: HTTPServerRequest) throws(RegistryError) -> HTTPServerResponse {
        guard let authenticator = configuration.authenticator, authenticator.mode == .token else {
            throw RegistryError(.unsupported, status: .notFound, "this registry issues no tokens")
        }
        guard let user = authenticator.verifyBasic(request.headers["Authorization"]) else {
            throw RegistryError(.unauthorized, status: .unauthorized, "basic credentials required for a token",
                                headers: ["WWW-Authenticate": "Basic realm=\"\(RegistryAuthenticator.service)\", charset=\"UTF-8\""])
        }
        let token = authenticator.issueToken(for: user)
        let seconds = RegistryAuthenticator.tokenLifetime.components.seconds
        let issued = ISO8601DateFormatter().string(from: Date())
        let body = "{\"token\":\"\(token)\",\"access_token\":\"\(token)\",\"expires_in\":\(seconds),\"issued_at\":\"\(issued)\"}"
        return HTTPServerResponse(status: .ok, headers: ["Content-Type": "application/json"], body: .string(body))
    }

    // MARK: Blobs

    private func parseDigest(_ text: String?) throws(RegistryError) -> Digest {
        guard let text else { throw .digestInvalid("no digest given: add ?digest=sha256:<hex>") }
        do {
            return try Digest(parsing: text)
        } catch {
            throw .digestInvalid(error.description)
        }
    }

    private func getBlob(_ request: HTTPServerRequest) throws -> HTTPServerResponse {
        _ = try repository(request, push: false)
        let digestText = request.pathParameters["digest"] ?? ""
        guard let digest = try? Digest(parsing: digestText) else {
            throw RegistryError.digestInvalid("\(digestText.prefix(100)) is not a sha256 digest")
        }
        let size: Int64
        do {
            size = try store.size(of: digest)
        } catch {
            throw Self.registryError(for: error)
        }
        var headers: HTTPHeaders = [
            "Content-Type": "application/octet-stream",
            "Docker-Content-Digest": digest.description,
            "Accept-Ranges": "bytes",
            "ETag": "\"\(digest)\"",
            "Cache-Control": "max-age=31536000",
        ]
        var range = ByteRange(start: 0, end: size - 1)
        var status = HTTPStatus.ok
        if request.method == .get {
            switch ByteRange.resolve(request.headers["Range"], length: size) {
            case .whole:
                break
            case .partial(let partial):
                range = partial
                status = .partialContent
                headers.add(name: "Content-Range", value: "bytes \(partial.start)-\(partial.end)/\(size)")
            case .unsatisfiable:
                return HTTPServerResponse(status: .rangeNotSatisfiable, headers: ["Content-Range": "bytes */\(size)"])
            }
        }
        // Opened before answering so that a blob pruned meanwhile is a 404, not a broken body.
        let descriptor: Int32
        do {
            descriptor = try store.openBlob(digest)
        } catch {
            throw Self.registryError(for: error)
        }
        let file = BlobFile(descriptor: descriptor)
        if request.method == .head || size == 0 {
            return HTTPServerResponse(status: status, headers: headers, body: .bytes([]))
                .withContentLength(request.method == .head ? size : 0)
        }
        let chunkBytes = configuration.blobReadChunkBytes
        let length = Int(range.count)
        let (first, end) = (range.start, range.end + 1)
        return HTTPServerResponse(status: status, headers: headers, body: .stream(length: length) { writer in
            var offset = first
            while offset < end {
                let want = Int(min(Int64(chunkBytes), end - offset))
                let bytes = try file.read(at: offset, count: want)
                if bytes.isEmpty { throw RegistryError(.unknown, status: .internalServerError, "blob \(digest) shrank while being served") }
                try await writer.write(bytes)
                offset += Int64(bytes.count)
            }
        })
    }

    private func deleteBlob(_ request: HTTPServerRequest) throws -> HTTPServerResponse {
        _ = try repository(request, push: true)
        // Blobs are shared by all repositories; unreferenced ones go with
        // the store's garbage collection (`shoal image prune --data DIR`).
        throw RegistryError(.unsupported, status: .methodNotAllowed,
                            "blob deletion is not supported: delete the manifests, then garbage-collect the store",
                            headers: ["Allow": "GET, HEAD"])
    }

    // MARK: Uploads

    private func uploadLocation(_ repository: String, _ session: UploadSession) -> String {
        // Opaque to clients: they must follow it as given and append `digest=`.
        "/v2/\(repository)/blobs/uploads/\(session.id)?_state=\(session.offset)"
    }

    private func uploadHeaders(_ repository: String, _ session: UploadSession) -> HTTPHeaders {
        [
            "Location": uploadLocation(repository, session),
            "Range": "0-\(max(session.offset - 1, 0))",
            "Docker-Upload-UUID": session.id,
        ]
    }

    private func startUpload(_ request: HTTPServerRequest) async throws -> HTTPServerResponse {
        let name = try repository(request, push: true)
        if let mount = request.query["mount"] {
            // Cross-repository mount: blobs are shared, so it succeeds whenever the blob is stored.
            if let from = request.query["from"] {
                if let reason = RepositoryName.problem(with: from) { throw RegistryError.nameInvalid(from, reason) }
                try authorize(request, repository: from, push: false)
            }
            if let digest = try? Digest(parsing: mount), store.contains(digest) {
                return created(name, digest)
            }
            // Unknown blob: fall through to an ordinary upload session, as the spec says.
        } else if let digestText = request.query["digest"] {
            // Monolithic upload: the whole blob in the POST body.
            let digest = try parseDigest(digestText)
            let writer = try store.makeWriter(expected: digest, expectedBytes: request.body.declaredLength.map(Int64.init))
            try await receive(request.body, into: writer, hasher: nil)
            try writer.commit()
            return created(name, digest)
        }
        guard let session = uploads.start(repository: name) else {
            throw RegistryError(.tooManyRequests, status: HTTPStatus(code: 429), "too many uploads in progress; retry later",
                                headers: ["Retry-After": "10"])
        }
        return HTTPServerResponse(status: .accepted, headers: uploadHeaders(name, session))
    }

    private func created(_ repository: String, _ digest: Digest) -> HTTPServerResponse {
        HTTPServerResponse(status: .created, headers: [
            "Location": "/v2/\(repository)/blobs/\(digest)",
            "Docker-Content-Digest": digest.description,
        ])
    }

    /// Streams a request body into a writer (and a hasher, when the digest comes later).
    @discardableResult
    private func receive(_ body: HTTPIncomingBody, into writer: BlobWriter, hasher: SHA256Hasher?) async throws -> Int64 {
        var received: Int64 = 0
        for try await chunk in body {
            try chunk.withUnsafeBytes { bytes in
                try writer.write(bytes)
                hasher?.update(bytes)
            }
            received += Int64(chunk.count)
        }
        return received
    }

    private func claim(_ request: HTTPServerRequest, _ name: String) throws(RegistryError) -> UploadSession {
        let id = request.pathParameters["session"] ?? ""
        switch uploads.claim(id: id, repository: name) {
        case .claimed(let session): return session
        case .unknown: throw .uploadUnknown(id)
        case .busy:
            throw RegistryError(.blobUploadInvalid, status: .conflict, "another request on this upload is in progress", detail: id)
        }
    }

    /// Checks a chunk's `Content-Range` against what was received.
    private func checkRange(_ request: HTTPServerRequest, _ name: String, _ session: UploadSession) throws(RegistryError) -> ByteRange? {
        guard let field = request.headers["Content-Range"] else { return nil }
        guard let range = ByteRange.parseUploadRange(field) else {
            throw RegistryError(.blobUploadInvalid, status: .badRequest, "malformed Content-Range (expected <start>-<end>)", detail: field)
        }
        if range.start != session.offset {
            throw RegistryError(.blobUploadInvalid, status: .rangeNotSatisfiable,
                                "chunk out of order: the upload holds \(session.offset) bytes, the chunk starts at \(range.start)",
                                detail: field, headers: uploadHeaders(name, session))
        }
        if let length = request.body.declaredLength, Int64(length) != range.count {
            throw RegistryError(.sizeInvalid, status: .badRequest, "Content-Range covers \(range.count) bytes but Content-Length is \(length)")
        }
        return range
    }

    private func patchUpload(_ request: HTTPServerRequest) async throws -> HTTPServerResponse {
        let name = try repository(request, push: true)
        let session = try claim(request, name)
        defer { uploads.release(session) }
        let range = try checkRange(request, name, session)
        if session.writer == nil {
            session.writer = try store.makeWriter()
            session.hasher = SHA256Hasher()
        }
        guard let writer = session.writer, let hasher = session.hasher else {
            preconditionFailure("upload \(session.id) has a writer without its hasher")
        }
        let before = writer.writtenBytes
        do {
            _ = try await receive(request.body, into: writer, hasher: hasher)
        } catch let error as ContentStoreError {
            // The writer aborted itself (size limit, disk): the upload cannot continue.
            uploads.finish(session)
            throw Self.registryError(for: error)
        } catch {
            // The client went away mid-chunk: keep what arrived, it can resume from the new offset.
            session.offset = writer.writtenBytes
            throw error
        }
        session.offset = writer.writtenBytes
        if let range, session.offset - before != range.count {
            throw RegistryError(.sizeInvalid, status: .badRequest,
                                "chunk shorter or longer than its Content-Range: \(session.offset - before) bytes for \(range.count)",
                                headers: uploadHeaders(name, session))
        }
        return HTTPServerResponse(status: .accepted, headers: uploadHeaders(name, session))
    }

    private func finishUpload(_ request: HTTPServerRequest) async throws -> HTTPServerResponse {
        let name = try repository(request, push: true)
        let digest = try parseDigest(request.query["digest"])
        let session = try claim(request, name)
        // Whatever happens now ends the session; a failed commit leaves nothing.
        defer { uploads.finish(session) }
        _ = try checkRange(request, name, session)
        if session.writer == nil {
            // Everything arrives now, with the digest known: the writer verifies it while streaming.
            let writer = try store.makeWriter(expected: digest)
            session.writer = writer
            _ = try await receive(request.body, into: writer, hasher: nil)
            try writer.commit()
        } else {
            guard let writer = session.writer, let hasher = session.hasher else {
                preconditionFailure("upload \(session.id) has a writer without its hasher")
            }
            _ = try await receive(request.body, into: writer, hasher: hasher)
            let actual = hasher.finish()
            guard actual == digest else {
                writer.abort()
                throw RegistryError.digestInvalid("expected \(digest), the \(writer.writtenBytes) bytes uploaded hash to \(actual)")
            }
            try writer.commit()
        }
        session.writer = nil
        return created(name, digest)
    }

    private func uploadStatus(_ request: HTTPServerRequest) throws -> HTTPServerResponse {
        let name = try repository(request, push: false)
        let session = try claim(request, name)
        defer { uploads.release(session) }
        return HTTPServerResponse(status: .noContent, headers: uploadHeaders(name, session))
    }

    private func cancelUpload(_ request: HTTPServerRequest) throws -> HTTPServerResponse {
        let name = try repository(request, push: true)
        let session = try claim(request, name)
        uploads.finish(session)
        session.writer?.abort()
        return HTTPServerResponse(status: .noContent)
    }

    // MARK: Manifests

    private enum ManifestReference {
        case tag(String)
        case digest(Digest)
    }

    private func parseReference(_ request: HTTPServerRequest, forPut: Bool) throws(RegistryError) -> ManifestReference {
        let text = request.pathParameters["reference"] ?? ""
        if text.contains(":") {
            guard let digest = try? Digest(parsing: text) else {
                throw forPut ? .digestInvalid("\(text.prefix(100)) is not a sha256 digest") : .manifestUnknown(String(text.prefix(100)))
            }
            return .digest(digest)
        }
        if let reason = RepositoryName.tagProblem(text) {
            throw forPut ? .manifestInvalid("invalid tag \(text.prefix(130).debugDescription): \(reason)") : .manifestUnknown(String(text.prefix(130)))
        }
        return .tag(text)
    }

    static func tagKey(_ repository: String, _ tag: String) -> String { repository + ":" + tag }

    /// The digest and media type a reference names in `repository`.
    private func resolve(_ repository: String, _ reference: ManifestReference) throws -> (Digest, String) {
        let digest: Digest
        switch reference {
        case .tag(let tag):
            guard let resolved = try store.resolve(tag: Self.tagKey(repository, tag)) else {
                throw links.exists(repository) ? RegistryError.manifestUnknown(tag) : RegistryError.nameUnknown(repository)
            }
            digest = resolved
        case .digest(let value):
            digest = value
        }
        guard let mediaType = links.mediaType(repository: repository, manifest: digest), store.contains(digest) else {
            throw links.exists(repository) ? RegistryError.manifestUnknown(digest.description) : RegistryError.nameUnknown(repository)
        }
        return (digest, mediaType)
    }

    private func getManifest(_ request: HTTPServerRequest) throws -> HTTPServerResponse {
        let name = try repository(request, push: false)
        let (digest, mediaType) = try resolve(name, parseReference(request, forPut: false))
        // Content negotiation: a stored manifest cannot be converted (that
        // would change its digest); refuse one the client says it cannot read.
        let accepted = request.headers.listValues(for: "Accept").map {
            String($0.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        }
        let known = MediaType.manifests.union(MediaType.indexes)
        if accepted.contains(where: known.contains), !accepted.contains(mediaType), !accepted.contains("*/*") {
            throw RegistryError(.manifestUnknown, status: .notFound,
                                "the manifest is \(mediaType), which the request's Accept does not list",
                                detail: "accepted: \(accepted.joined(separator: ", "))")
        }
        let bytes = try store.read(digest, maximumBytes: Int64(Self.maximumManifestBytes))
        return HTTPServerResponse(status: .ok, headers: [
            "Content-Type": mediaType,
            "Docker-Content-Digest": digest.description,
            "ETag": "\"\(digest)\"",
        ], body: .bytes(bytes))
    }

    private func putManifest(_ request: HTTPServerRequest) async throws -> HTTPServerResponse {
        let name = try repository(request, push: true)
        let reference = try parseReference(request, forPut: true)
        if case .tag(let tag) = reference, Self.tagKey(name, tag).utf8.count > ContentStore.maximumTagBytes {
            throw RegistryError.manifestInvalid("repository name and tag together exceed \(ContentStore.maximumTagBytes - 1) bytes")
        }
        let bytes: [UInt8]
        do {
            bytes = try await request.body.collect(upTo: Self.maximumManifestBytes)
        } catch HTTPError.bodyTooLarge {
            throw RegistryError(.manifestInvalid, status: .contentTooLarge, "manifest invalid",
                                detail: "larger than \(Self.maximumManifestBytes) bytes")
        }
        let contentType = request.headers["Content-Type"].map {
            String($0.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespaces)
        }
        let known = MediaType.manifests.union(MediaType.indexes)
        let transportType = contentType.flatMap { known.contains($0) ? $0 : nil }
        let document: ImageDocument
        do {
            document = try ImageDocument.decode(bytes, mediaType: transportType)
        } catch {
            throw RegistryError.manifestInvalid(error.description)
        }
        // The media type: the document's own, else the request's (umoci), else inferred.
        let mediaType: String
        let children: [Descriptor]
        switch document {
        case .manifest(let manifest):
            mediaType = manifest.mediaType ?? transportType ?? MediaType.ociManifest
            children = [manifest.config] + manifest.layers
            guard MediaType.manifests.contains(mediaType) else {
                throw RegistryError.manifestInvalid("a manifest document sent as \(mediaType)")
            }
        case .index(let index):
            mediaType = index.mediaType ?? transportType ?? MediaType.ociIndex
            children = index.manifests
            guard MediaType.indexes.contains(mediaType) else {
                throw RegistryError.manifestInvalid("an index document sent as \(mediaType)")
            }
        }
        let digest = Digest.of(bytes)
        if case .digest(let claimed) = reference, claimed != digest {
            throw RegistryError.digestInvalid("the manifest was pushed as \(claimed) but hashes to \(digest)")
        }
        var referenced: [Digest] = []
        for child in children {
            // Foreign (non-distributable) layers live elsewhere, at their URLs.
            if child.urls?.isEmpty == false || child.mediaType.contains("nondistributable") || child.mediaType.contains("foreign") { continue }
            guard store.contains(child.digest) else {
                throw RegistryError(.manifestBlobUnknown, status: .badRequest, "manifest references a blob unknown to the registry",
                                    detail: child.digest.description)
            }
            if let size = try? store.size(of: child.digest), size != child.size {
                throw RegistryError.manifestInvalid("descriptor of \(child.digest) says \(child.size) bytes, the blob has \(size)")
            }
            referenced.append(child.digest)
        }
        try store.write(bytes, expected: digest)
        try store.addReferences(from: digest, to: referenced)
        try links.link(repository: name, manifest: digest, mediaType: mediaType)
        if case .tag(let tag) = reference {
            try store.tag(Self.tagKey(name, tag), to: digest)
        }
        return HTTPServerResponse(status: .created, headers: [
            "Location": "/v2/\(name)/manifests/\(digest)",
            "Docker-Content-Digest": digest.description,
        ])
    }

    private func deleteManifest(_ request: HTTPServerRequest) throws -> HTTPServerResponse {
        let name = try repository(request, push: true)
        guard configuration.allowDelete else {
            throw RegistryError(.unsupported, status: .methodNotAllowed, "deletion is disabled on this registry")
        }
        switch try parseReference(request, forPut: false) {
        case .tag(let tag):
            guard try store.removeTag(Self.tagKey(name, tag)) else { throw RegistryError.manifestUnknown(tag) }
        case .digest(let digest):
            guard links.unlink(repository: name, manifest: digest) else { throw RegistryError.manifestUnknown(digest.description) }
            let prefix = name + ":"
            for (key, tagged) in try store.tags() where tagged == digest && key.hasPrefix(prefix) && !key.dropFirst(prefix.count).contains("/") {
                try store.removeTag(key)
            }
        }
        return HTTPServerResponse(status: .accepted)
    }

    // MARK: Listings

    /// `n` and `last` of a paginated listing.
    private func page(_ request: HTTPServerRequest) throws(RegistryError) -> (limit: Int, last: String?) {
        var limit = configuration.maximumPageEntries
        if let text = request.query["n"] {
            guard let value = Int(text), value >= 0 else {
                throw RegistryError(.unsupported, status: .badRequest, "n must be a non-negative integer", detail: text)
            }
            limit = min(value, configuration.maximumPageEntries)
        }
        return (limit, request.query["last"])
    }

    /// Entries after `last` in lexical (byte) order, at most `limit`, and whether more follow.
    private static func paginate(_ sorted: [String], limit: Int, last: String?) -> ([String], Bool) {
        var remaining = sorted[...]
        if let last {
            let lastBytes = Array(last.utf8)
            remaining = remaining.drop { !lastBytes.lexicographicallyPrecedes(Array($0.utf8)) }
        }
        let pageEntries = Array(remaining.prefix(limit))
        return (pageEntries, remaining.count > pageEntries.count)
    }

    private func listTags(_ request: HTTPServerRequest) throws -> HTTPServerResponse {
        let name = try repository(request, push: false)
        let (limit, last) = try page(request)
        let prefix = name + ":"
        let tags = try store.tags().compactMap { entry -> String? in
            guard entry.name.hasPrefix(prefix) else { return nil }
            let tag = String(entry.name.dropFirst(prefix.count))
            return tag.contains("/") || tag.contains(":") ? nil : tag
        }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        guard !tags.isEmpty || links.exists(name) else { throw RegistryError.nameUnknown(name) }
        let (entries, more) = Self.paginate(tags, limit: limit, last: last)
        struct Body: Encodable { var name: String; var tags: [String] }
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        if more, let lastEntry = entries.last {
            headers.add(name: "Link", value: "</v2/\(name)/tags/list?n=\(limit)&last=\(PercentEncoding.encode(lastEntry))>; rel=\"next\"")
        }
        return HTTPServerResponse(status: .ok, headers: headers, body: .bytes(ImageDocument.encode(Body(name: name, tags: entries))))
    }

    private func catalog(_ request: HTTPServerRequest) throws -> HTTPServerResponse {
        try authorize(request, repository: nil, push: false)
        let (limit, last) = try page(request)
        let (entries, more) = Self.paginate(links.repositories(), limit: limit, last: last)
        struct Body: Encodable { var repositories: [String] }
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        if more, let lastEntry = entries.last {
            headers.add(name: "Link", value: "</v2/_catalog?n=\(limit)&last=\(PercentEncoding.encode(lastEntry))>; rel=\"next\"")
        }
        return HTTPServerResponse(status: .ok, headers: headers, body: .bytes(ImageDocument.encode(Body(repositories: entries))))
    }
}

/// A blob file open for the life of one response; closed when released.
final class BlobFile: @unchecked Sendable {
    let descriptor: Int32

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        _ = Glibc.close(descriptor)
    }

    /// Up to `count` bytes at `offset` (fewer only at the end of the file).
    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let result = bytes.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled))
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw RegistryError(.unknown, status: .internalServerError, "reading a blob failed", detail: String(cString: strerror(errno)))
            }
            if result == 0 { break }
            filled += result
        }
        if filled < count { bytes.removeLast(count - filled) }
        return bytes
    }
}

extension HTTPServerResponse {
    /// Sets Content-Length explicitly (HEAD answers carry the GET body's length).
    func withContentLength(_ length: Int64) -> HTTPServerResponse {
        var copy = self
        copy.headers.replaceOrAdd(name: "Content-Length", value: String(length))
        return copy
    }
}

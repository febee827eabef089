import Foundation
import HTTP
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// `shoal container cp` on the local API (as Docker's `/archive`): a path's
/// stat, a path as a tar, and a tar extracted into a directory, inside a
/// running or stopped container.
extension ControlAPI {
    /// The largest tar `PUT /archive` takes.
    static let copyMaxBodyBytes = 1 << 40
    /// The JSON ``ContainerPathStat`` of the archived path, base64, on `GET /archive`.
    public static let pathStatHeader = "Shoal-Path-Stat"

    typealias Handler = @Sendable (Request) async throws -> HTTPServerResponse

    static func addCopyRoutes(_ add: (HTTPMethod, String, @escaping Handler) -> Void, upload: (HTTPMethod, String, @escaping Handler) -> Void) {
        add(.get, "/v1/containers/<id>/archive/stat") { request in try await getContainersByIDArchiveStat(request) }
        add(.get, "/v1/containers/<id>/archive") { request in try await getContainersByIDArchive(request) }
        upload(.put, "/v1/containers/<id>/archive") { request in try await putContainersByIDArchive(request) }
    }

    /// GET /v1/containers/{id}/archive/stat?path=P[&follow=true]
    static func getContainersByIDArchiveStat(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        return json(try await engine.pathStat(try request.parameter("id"), path: try request.copyPath(), followLink: try request.flag("follow")))
    }

    /// GET /v1/containers/{id}/archive?path=P[&name=N][&follow=true]: P as
    /// a tar whose top entry is named N (default: P's base name; "." for a
    /// directory's contents); `follow` archives what a link at P points to.
    /// Spooled first, so a failure is an error status, not a cut tar.
    static func getContainersByIDArchive(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        let key = try request.parameter("id")
        let path = try request.copyPath()
        let follow = try request.flag("follow")
        let spool = try ContainerEngine.spoolFile(in: engine.root)
        let stat: ContainerPathStat
        let length: Int
        do {
            stat = try await engine.archive(key, path: path, rootName: request.raw.query["name"], followLink: follow, to: spool)
            length = Int(lseek(spool, 0, SEEK_END))
            lseek(spool, 0, SEEK_SET)
        } catch {
            close(spool)
            throw error
        }
        let header = Data(Support.encode(stat)).base64EncodedString()
        return HTTPServerResponse(status: .ok, headers: ["Content-Type": "application/x-tar", pathStatHeader: header],
                                  body: .stream(length: length) { writer in try await streamFile(spool, to: writer) })
    }

    /// PUT /v1/containers/{id}/archive?path=DIR: extracts the tar body
    /// (plain or gzip) into the existing directory DIR. The body is spooled
    /// whole first, so a cut upload extracts nothing.
    static func putContainersByIDArchive(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        let key = try request.parameter("id")
        let path = try request.copyPath()
        _ = try engine.resolve(key)  // 404 before reading the body
        let spool = try ContainerEngine.spoolFile(in: engine.root)
        defer { close(spool) }
        try await request.spoolBody(to: spool)
        lseek(spool, 0, SEEK_SET)
        _ = try await engine.extract(key, into: path, from: spool)
        return HTTPServerResponse(status: .noContent)
    }
}

extension ControlAPI.Request {
    /// `?path=` of the copy routes.
    func copyPath() throws -> String {
        guard let path = raw.query["path"], !path.isEmpty else {
            throw APIError.invalid("query parameter 'path'", "give the path inside the container, e.g. ?path=/etc/hosts")
        }
        return path
    }

    /// Writes the whole request body to `descriptor`.
    @inline(never)  // see body()
    func spoolBody(to descriptor: Int32) async throws {
        do {
            for try await chunk in raw.body {
                var offset = 0
                while offset < chunk.count {
                    let count = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else {
                        throw APIError(status: 507, code: "no_space", message: "cannot store the upload: \(String(cString: strerror(errno)))",
                                       hint: "free space in the daemon's data directory; nothing was extracted")
                    }
                    offset += count
                }
            }
        } catch HTTPError.bodyTooLarge(let limit) {
            throw APIError(status: 413, code: "payload_too_large", message: "the archive exceeds \(limit) bytes", hint: "copy less at once; nothing was extracted")
        } catch let error as HTTPParseError {
            let status = error.status.code
            throw APIError(status: status, code: status == 413 ? "payload_too_large" : "invalid_argument", message: "\(error)", hint: "nothing was extracted")
        }
    }
}

import Foundation
import Images
import Runtime
#if canImport(Glibc)
import Glibc
#endif

extension ContainerEngine {
    /// What `path` is inside the container (`cp` decides with it how to
    /// name what it copies); with `followLink`, what a link there points to
    /// (inside the container).
    func pathStat(_ key: String, path: String, followLink: Bool) async throws -> ContainerPathStat {
        let record = try resolve(key)
        try Self.checkCopyPath(path)
        do {
            return try await Self.blocking { [runtime] in try runtime.pathStat(record.id, path: path, followLink: followLink) }
        } catch {
            throw Self.copyError(error, name: record.name)
        }
    }

    /// Writes `path` inside the container as a tar to `descriptor` (see
    /// ``ContainerRuntime/archive(_:path:rootName:followLink:to:)``).
    func archive(_ key: String, path: String, rootName: String?, followLink: Bool, to descriptor: Int32) async throws -> ContainerPathStat {
        let record = try resolve(key)
        try Self.checkCopyPath(path)
        if let rootName, rootName != ".", rootName.isEmpty || rootName.contains("/") || rootName == ".." {
            throw APIError.invalid("query parameter 'name'", "'\(rootName)' must be one file name (no '/'), or . for a directory's contents")
        }
        do {
            return try await Self.blocking { [runtime] in
                try runtime.archive(record.id, path: path, rootName: rootName, followLink: followLink, to: descriptor)
            }
        } catch {
            throw Self.copyError(error, name: record.name)
        }
    }

    /// Extracts the tar (plain or gzip) read from `descriptor` into the
    /// directory `path` inside the container, which must exist. Names are
    /// resolved below that directory and never leave it; owners are kept
    /// as the archive says; device nodes are skipped.
    func extract(_ key: String, into path: String, from descriptor: Int32) async throws -> Int {
        let record = try resolve(key)
        try Self.checkCopyPath(path)
        do {
            return try await Self.blocking { [runtime] in
                try runtime.withDirectory(record.id, path: path) { directory in
                    let extractor = try LayerExtractor(rootPath: directory, options: .init(mode: .plain, preserveOwnership: true))
                    let compression = try LayerCompression.detect(descriptor: descriptor, path: "the uploaded archive")
                    return try extractor.extract(from: FileByteSource(descriptor: descriptor, path: "the uploaded archive"),
                                                 compression: compression).entries
                }
            }
        } catch let error as LayerExtractionError {
            throw APIError(status: 400, code: "invalid_archive", message: "cannot copy into \(record.name):\(path): \(error)",
                           hint: "send a tar archive (plain or gzip); what was extracted before the error stays")
        } catch {
            throw Self.copyError(error, name: record.name)
        }
    }

    static func checkCopyPath(_ path: String) throws {
        guard !path.isEmpty else { throw APIError.invalid("query parameter 'path'", "give a path inside the container") }
        guard !path.utf8.contains(0), path.utf8.count < Int(PATH_MAX) else {
            throw APIError.invalid("query parameter 'path'", "it must be shorter than \(PATH_MAX) bytes and hold no NUL byte")
        }
    }

    /// The runtime's path errors as the API answers them; the rest as ``apiError(_:name:)``.
    static func copyError(_ error: any Error, name: String) -> APIError {
        switch error as? RuntimeError {
        case .noSuchPath(_, let path):
            return APIError(status: 404, code: "no_such_path", message: "no such file or directory in container \(name): \(path)",
                            hint: "list the directory with `shoal container exec \(name) ls` (a running container) or `shoal container export`")
        case .notADirectory(_, let path):
            return APIError(status: 400, code: "not_a_directory", message: "\(path) in container \(name) is not a directory",
                            hint: "copy into an existing directory")
        default:
            return apiError(error, name: name)
        }
    }
}

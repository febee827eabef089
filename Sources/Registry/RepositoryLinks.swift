import Foundation
import Images

/// Which manifests belong to which repository, and their media types:
/// `root/<percent-encoded repository>/manifests/<hex>` holds the media type
/// the manifest was pushed with (umoci's manifests carry none in the
/// document, so the push's Content-Type must be remembered). The bytes
/// themselves live in the ``ContentStore``; tags are store tags named
/// `repository:tag`.
final class RepositoryLinks: @unchecked Sendable {
    let root: String

    init(root: String) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    private func directory(_ repository: String) -> String {
        // Names hold only [a-z0-9._/-]: encoding the '/' keeps one flat directory per repository.
        root + "/" + repository.replacingOccurrences(of: "/", with: "%2F")
    }

    func link(repository: String, manifest digest: Digest, mediaType: String) throws {
        let manifests = directory(repository) + "/manifests"
        try FileManager.default.createDirectory(atPath: manifests, withIntermediateDirectories: true)
        let path = manifests + "/" + digest.hex
        let temporary = path + ".\(UUID().uuidString.prefix(8)).tmp"
        try Data(mediaType.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else {
            let code = errno
            try? FileManager.default.removeItem(atPath: temporary)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }

    /// The media type `digest` was pushed to `repository` with; nil if it was not.
    func mediaType(repository: String, manifest digest: Digest) -> String? {
        let path = directory(repository) + "/manifests/" + digest.hex
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// Removes the link; false if there was none.
    func unlink(repository: String, manifest digest: Digest) -> Bool {
        (try? FileManager.default.removeItem(atPath: directory(repository) + "/manifests/" + digest.hex)) != nil
    }

    func exists(_ repository: String) -> Bool {
        FileManager.default.fileExists(atPath: directory(repository))
    }

    /// Every repository ever pushed to, in lexical order.
    func repositories() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.map { $0.replacingOccurrences(of: "%2F", with: "/") }
            .filter { RepositoryName.isValid($0) }
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }
}

import Foundation

/// Named volumes of the node daemon: `DIR/volumes/<name>/_data` is what a
/// container mounts (`-v NAME:/path`), `DIR/volumes/<name>/volume.json`
/// what `shoal volume inspect` shows. Volumes outlive containers; only
/// `volume rm` (or `rm -v`/`--rm` for anonymous ones) removes them.
final class VolumeStore: @unchecked Sendable {
    struct Record: Codable {
        var name: String
        var createdAt: Date
        var labels: [String: String]
        var anonymous: Bool
    }

    static let maxNameBytes = 128

    let root: String
    private let lock = NSLock()

    init(root: String) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func dataPath(_ name: String) -> String { root + "/" + name + "/_data" }
    private func recordPath(_ name: String) -> String { root + "/" + name + "/volume.json" }

    /// Docker's rule: `[A-Za-z0-9][A-Za-z0-9_.-]*`, so a name never is a path.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter || first.isNumber, name.utf8.count <= maxNameBytes else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-") }
    }

    static func invalidName(_ name: String) -> APIError {
        APIError.invalid("volume name '\(name)'", "it must be 1-\(maxNameBytes) of [A-Za-z0-9_.-], starting with a letter or digit")
    }

    /// The volume `name`, created when missing (`-v NAME:/path` creates it, as
    /// docker does). `created` says whether this call made it.
    func ensure(_ name: String, anonymous: Bool = false, labels: [String: String] = [:]) throws -> (record: Record, created: Bool) {
        guard Self.isValidName(name) else { throw Self.invalidName(name) }
        return try lock.withLock {
            if let existing = read(name) { return (existing, false) }
            let record = Record(name: name, createdAt: Date(), labels: labels, anonymous: anonymous)
            let directory = root + "/" + name
            do {
                try FileManager.default.createDirectory(atPath: directory + "/_data", withIntermediateDirectories: true)
                try Support.writeFile(Support.encode(record), to: recordPath(name), mode: 0o600)
            } catch {
                try? FileManager.default.removeItem(atPath: directory)
                throw APIError(status: 500, code: "internal", message: "cannot create volume \(name) under \(root): \(error)", hint: "check the data directory's disk and permissions")
            }
            return (record, true)
        }
    }

    func read(_ name: String) -> Record? {
        guard Self.isValidName(name), let data = FileManager.default.contents(atPath: recordPath(name)) else { return nil }
        return try? JSONDecoder().decode(Record.self, from: data)
    }

    /// Every volume, by name.
    func list() -> [Record] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.sorted().compactMap(read)
    }

    /// Removes the volume and its data. The caller checks that no container uses it.
    func remove(_ name: String) throws {
        guard read(name) != nil else { throw APIError(status: 404, code: "not_found", message: "no such volume: \(name)", hint: "list them with `shoal volume ls`") }
        try lock.withLock {
            do {
                try FileManager.default.removeItem(atPath: root + "/" + name)
            } catch {
                throw APIError(status: 500, code: "internal", message: "cannot remove volume \(name): \(error)", hint: "check the data directory")
            }
        }
    }
}

import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer

/// The numeric identity a container runs as, resolved in Swift before
/// spawning (the child cannot parse files without allocating) from the root
/// filesystem's /etc/passwd and /etc/group.
public struct ResolvedUser: Codable, Equatable, Sendable {
    public var uid: UInt32
    public var gid: UInt32
    public var additionalGroups: [UInt32]
    public var home: String

    public init(uid: UInt32, gid: UInt32, additionalGroups: [UInt32], home: String) {
        self.uid = uid
        self.gid = gid
        self.additionalGroups = additionalGroups
        self.home = home
    }

    public static let root = ResolvedUser(uid: 0, gid: 0, additionalGroups: [], home: "/root")

    /// Resolves `user` (`name`, `uid`, `name:group`, `uid:gid`; nil = root)
    /// against the files of `layers` (topmost first).
    public static func resolve(_ user: String?, layers: [String]) throws -> ResolvedUser {
        let passwd = readEtc("passwd", layers: layers).map(parse) ?? []
        let groups = readEtc("group", layers: layers).map(parse) ?? []
        let spec = user ?? ""
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let userPart = parts.first ?? ""
        let groupPart = parts.count > 1 ? parts[1] : nil

        var resolved: ResolvedUser
        var name: String?
        if userPart.isEmpty {
            let entry = passwd.first { $0.count > 2 && $0[2] == "0" }
            resolved = ResolvedUser(uid: 0, gid: 0, additionalGroups: [], home: entry.map { field($0, 5) } ?? "/root")
            name = entry?.first ?? "root"
        } else if let uid = UInt32(userPart) {
            let entry = passwd.first { $0.count > 2 && $0[2] == userPart }
            resolved = ResolvedUser(
                uid: uid, gid: entry.flatMap { UInt32(field($0, 3)) } ?? 0,
                additionalGroups: [], home: entry.map { field($0, 5) } ?? "/")
            name = entry?.first
        } else {
            guard let entry = passwd.first(where: { $0.first == userPart }),
                  let uid = UInt32(field(entry, 2)), let gid = UInt32(field(entry, 3))
            else { throw RuntimeError.noSuchUser(userPart) }
            resolved = ResolvedUser(uid: uid, gid: gid, additionalGroups: [], home: field(entry, 5))
            name = userPart
        }
        if let groupPart {
            if let gid = UInt32(groupPart) {
                resolved.gid = gid
            } else if let entry = groups.first(where: { $0.first == groupPart }), let gid = UInt32(field(entry, 2)) {
                resolved.gid = gid
            } else {
                throw RuntimeError.noSuchGroup(groupPart)
            }
        } else if let name {
            // Supplementary groups from /etc/group membership (as Docker).
            resolved.additionalGroups = groups.compactMap { entry -> UInt32? in
                let members = field(entry, 3).split(separator: ",").map(String.init)
                guard members.contains(name), let gid = UInt32(field(entry, 2)), gid != resolved.gid else { return nil }
                return gid
            }
        }
        if resolved.home.isEmpty { resolved.home = "/" }
        return resolved
    }

    private static func field(_ entry: [String], _ index: Int) -> String {
        index < entry.count ? entry[index] : ""
    }

    private static func parse(_ text: String) -> [[String]] {
        text.split(separator: "\n").compactMap { line in
            if line.hasPrefix("#") { return nil }
            return line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// /etc/NAME from the topmost layer that has it, opened with every
    /// symlink resolved inside that layer (an image cannot make us read the
    /// host's files).
    private static func readEtc(_ name: String, layers: [String]) -> String? {
        for layer in layers {
            let root = shoal_open_directory_path(layer)
            if root < 0 { continue }
            defer { Syscall.close(root) }
            let file = shoal_open_in_root(root, "/etc/" + name, O_RDONLY)
            if file < 0 { continue }
            defer { Syscall.close(file) }
            if let bytes = try? Syscall.readAll(file) { return String(decoding: bytes, as: UTF8.self) }
        }
        return nil
    }
}

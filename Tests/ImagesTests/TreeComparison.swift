import TestSupport
import Foundation
import Glibc
import Images

/// What a path in an extracted tree looks like, for comparing two extractions.
struct TreeEntry: Equatable, CustomStringConvertible {
    var type: UInt32
    var permissions: UInt32
    var uid: UInt32
    var gid: UInt32
    var modificationSeconds: Int
    var linkTarget: String?
    var contentDigest: Digest?
    var linkCount: UInt

    var description: String {
        "type \(String(type, radix: 8)) mode \(String(permissions, radix: 8)) \(uid):\(gid) mtime \(modificationSeconds) "
            + "link \(linkTarget ?? "-") digest \(contentDigest?.description.prefix(19) ?? "-") nlink \(linkCount)"
    }

    /// Every path under `root` (relative, sorted) and what it is.
    static func scan(_ root: String) throws -> [String: TreeEntry] {
        var entries: [String: TreeEntry] = [:]
        let paths = try FileManager.default.subpathsOfDirectory(atPath: root)
        for relative in paths + [""] {
            let path = relative.isEmpty ? root : root + "/" + relative
            var info = stat()
            guard lstat(path, &info) == 0 else { throw CocoaError(.fileReadUnknown) }
            let type = info.st_mode & S_IFMT
            var entry = TreeEntry(type: type, permissions: info.st_mode & 0o7777, uid: info.st_uid, gid: info.st_gid,
                                  modificationSeconds: info.st_mtim.tv_sec, linkTarget: nil, contentDigest: nil,
                                  linkCount: type == S_IFDIR ? 0 : UInt(info.st_nlink))
            if type == S_IFLNK {
                entry.linkTarget = try FileManager.default.destinationOfSymbolicLink(atPath: path)
            } else if type == S_IFREG {
                entry.contentDigest = Digest.of(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            }
            entries[relative.isEmpty ? "." : relative] = entry
        }
        return entries
    }

    /// Human lines for every difference (empty when the trees match).
    static func differences(_ left: [String: TreeEntry], _ right: [String: TreeEntry]) -> [String] {
        var lines: [String] = []
        for path in Set(left.keys).union(right.keys).sorted() {
            switch (left[path], right[path]) {
            case let (a?, b?) where a != b: lines.append("\(path): \(a) vs \(b)")
            case (nil, _?): lines.append("\(path): only in the second tree")
            case (_?, nil): lines.append("\(path): only in the first tree")
            default: break
            }
        }
        return lines
    }
}

/// Runs a command to completion; throws on a non-zero exit.
@discardableResult
func run(_ executable: String, _ arguments: [String]) throws -> String {
    let result = try runToExit(executable, arguments, mergingError: true)
    guard result.status == 0 else {
        throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(executable) \(arguments) failed: \(result.output)"])
    }
    return result.output
}

/// The busybox-static binary, if installed.
let busyboxPath: String? = ["/bin/busybox", "/usr/bin/busybox"].first { FileManager.default.isExecutableFile(atPath: $0) }

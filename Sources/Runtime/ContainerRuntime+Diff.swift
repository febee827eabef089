import Posix
#if canImport(Glibc)
import Glibc
#endif
import Foundation

extension ContainerRuntime {
    /// `docker diff`: what the container's writable layer (the overlay's
    /// upper directory) holds, against the image layers below, sorted by
    /// path. A whiteout (a 0:0 character device) is a deletion; a directory
    /// or file that also exists below is a change, else an addition.
    /// Works whether the container runs or not; a container on a plain
    /// directory root has no layer to compare and is refused. The runtime's
    /// own mount points (/etc/hosts, /etc/hostname, /etc/resolv.conf, volume
    /// targets) are left out, as Docker does.
    public func diff(_ id: String) throws -> [FilesystemChange] {
        let container = try lookup(id)
        let spec = container.state.spec
        guard case .overlay(let lower, let upper, _, _) = spec.rootFilesystem else {
            throw RuntimeError.noWritableLayer(id: id, operation: "diff")
        }
        let runtimeMountPoints = Set(Self.networkFileMountPoints + spec.mounts.map(\.destination))
        var changes: [FilesystemChange] = []
        try Self.walk(upper, relative: "") { relative, info in
            let path = "/" + relative
            if runtimeMountPoints.contains(path) {
                // The runtime's, whatever the image has there (Docker leaves them out too).
            } else if Self.isWhiteout(info) {
                changes.append(FilesystemChange(kind: .deleted, path: path))
            } else if Self.existsBelow(path, lower: lower) {
                changes.append(FilesystemChange(kind: .changed, path: path))
            } else {
                changes.append(FilesystemChange(kind: .added, path: path))
            }
            // Below a deleted or new directory everything is new; below an opaque one too.
            return (info.st_mode & S_IFMT) == S_IFDIR
        }
        return changes.sorted { $0.path < $1.path }
    }

    /// Files the runtime bind-mounts over the root (created as empty mount
    /// points when the image lacks them).
    static let networkFileMountPoints = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]

    /// An overlayfs whiteout: a character device with device number 0:0.
    static func isWhiteout(_ info: stat) -> Bool {
        (info.st_mode & S_IFMT) == S_IFCHR && info.st_rdev == 0
    }

    /// Whether `path` exists in the image layers (topmost first): the first
    /// layer that has an entry decides; a whiteout there hides it.
    static func existsBelow(_ path: String, lower: [String]) -> Bool {
        for layer in lower {
            var info = stat()
            if lstat(layer + path, &info) == 0 { return !isWhiteout(info) }
        }
        return false
    }

    /// Visits every entry under `root` depth-first (parents before
    /// children, names sorted); `visit` returns whether to descend.
    static func walk(_ root: String, relative: String, _ visit: (String, stat) throws -> Bool) throws {
        let directory = relative.isEmpty ? root : root + "/" + relative
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        } catch {
            throw RuntimeError.hostSetupFailed(SystemError(call: "opendir", errno: errno == 0 ? EIO : errno, path: directory))
        }
        for name in names {
            let child = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            guard lstat(root + "/" + child, &info) == 0 else { continue }  // gone meanwhile
            if try visit(child, info), (info.st_mode & S_IFMT) == S_IFDIR {
                try walk(root, relative: child, visit)
            }
        }
    }
}

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
        try Self.walk(upper, relative: "") { relative, info, _, _ in
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
    /// children, names sorted); `visit` returns whether to descend. Each
    /// directory is opened relative to its parent without following links,
    /// so a running container that swaps a directory for a symbolic link
    /// mid-walk cannot lead it outside `root`; `visit` also gets the
    /// entry's directory (a descriptor valid during the call) and name, to
    /// open the entry the same way.
    static func walk(_ root: String, relative: String, _ visit: (String, stat, Int32, String) throws -> Bool) throws {
        let directory = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else {
            throw RuntimeError.hostSetupFailed(SystemError(call: "open", errno: errno, path: root))
        }
        defer { Syscall.close(directory) }
        try walk(directory, relative: relative, visit)
    }

    static func walk(_ directory: Int32, relative: String, _ visit: (String, stat, Int32, String) throws -> Bool) throws {
        for name in try listDirectory(directory, path: relative) {
            let child = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }  // gone meanwhile
            guard try visit(child, info, directory, name), (info.st_mode & S_IFMT) == S_IFDIR else { continue }
            let opened = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard opened >= 0 else {
                if errno == ENOENT { continue }
                // ELOOP/ENOTDIR: replaced by a link or a file since it was listed; never followed.
                throw RuntimeError.hostSetupFailed(SystemError(call: "openat", errno: errno, path: child))
            }
            defer { Syscall.close(opened) }
            try walk(opened, relative: child, visit)
        }
    }

    /// The names in the directory `directory` (an O_RDONLY descriptor), sorted, without `.` and `..`.
    static func listDirectory(_ directory: Int32, path: String) throws -> [String] {
        let listing = dup(directory)
        guard listing >= 0, let stream = fdopendir(listing) else {
            if listing >= 0 { Syscall.close(listing) }
            throw RuntimeError.hostSetupFailed(SystemError(call: "fdopendir", errno: errno, path: path.isEmpty ? "." : path))
        }
        var names: [String] = []
        errno = 0
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        let listingError = errno
        closedir(stream)
        // readdir ends with NULL both at the end and on an error: only errno tells them apart.
        if listingError != 0 {
            throw RuntimeError.hostSetupFailed(SystemError(call: "readdir", errno: listingError, path: path.isEmpty ? "." : path))
        }
        return names.sorted()
    }
}

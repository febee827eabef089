import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer
import Foundation

/// `cp`: files in and out of a container's root, whether it runs or not.
///
/// Every path is resolved inside the container's root with
/// `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so a symbolic link in
/// the container (`/x -> /etc/passwd`, `up -> ../../..`) resolves as it
/// would for a process inside, never to the host's file; files are then
/// opened relative to their directory with `O_NOFOLLOW`.
extension ContainerRuntime {
    /// Runs `body` with a descriptor of the container's root directory as
    /// its processes see it, volumes included: for a running (or paused)
    /// container its init's root (`/proc/PID/root`, in the container's
    /// mount namespace); for a created or exited one its layers mounted on
    /// a private mount point with its volumes bound inside, unmounted
    /// afterwards (without its volumes when `includeVolumes` is false: the
    /// image's files at their paths). The container cannot start meanwhile.
    public func withRootDirectory<T>(_ id: String, includeVolumes: Bool = true, _ body: (Int32) throws -> T) throws -> T {
        let container = try lookup(id)
        container.filesystemLock.lock()
        defer { container.filesystemLock.unlock() }
        let state = container.state
        if state.status.hasProcess, let pid = state.pid {
            let root = Glibc.open("/proc/\(pid)/root", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard root >= 0 else {
                throw RuntimeError.hostSetupFailed(SystemError(call: "open", errno: errno, path: "/proc/\(pid)/root"))
            }
            defer { Syscall.close(root) }
            // Opened, then checked: the descriptor pins the root of this exact process.
            guard state.processStartTicks == nil || ProcessIdentity.startTicks(pid: pid) == state.processStartTicks else {
                throw RuntimeError.invalidState(id: id, state: .exited, operation: "copy files of")
            }
            return try body(root)
        }
        let mountPoint = container.directory + "/" + Self.copyMountDirectory
        var spec = state.spec
        if !includeVolumes { spec.mounts = [] }
        try mountStoppedRoot(spec, at: mountPoint)
        defer { Self.unmountStoppedRoot(mountPoint) }
        let root = Glibc.open(mountPoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw RuntimeError.hostSetupFailed(SystemError(call: "open", errno: errno, path: mountPoint)) }
        defer { Syscall.close(root) }
        return try body(root)
    }

    /// O_PATH (a GNU flag Swift's Glibc does not export): a descriptor that
    /// names a file without opening it for reading or writing.
    static let openPathOnly: Int32 = 0o10_000_000

    /// Where a stopped container's root is mounted for a copy (inside its
    /// state directory, mode 0700).
    static let copyMountDirectory = "copy-root"

    /// What `path` inside the container is; a symbolic link is followed
    /// (inside the root) unless `followLink` is false.
    public func pathStat(_ id: String, path: String, followLink: Bool = true) throws -> ContainerPathStat {
        try withRootDirectory(id) { root in
            let (_, stat) = try Self.openInRoot(root, path, id: id, followLink: followLink)
            return stat
        }
    }

    /// `cp CONTAINER:PATH`: the file or directory at `path` (a symbolic
    /// link as itself unless `followLink`) as a tar written to
    /// `descriptor`, its top entry named `rootName` (default: the base
    /// name); `rootName` "." writes a directory's contents only (`PATH/.`).
    /// The contents of /proc, /sys and other kernel file systems mounted
    /// inside are left out. Returns what `path` is.
    @discardableResult
    public func archive(_ id: String, path: String, rootName: String? = nil, followLink: Bool = false, includeVolumes: Bool = true,
                        to descriptor: Int32) throws -> ContainerPathStat {
        try withRootDirectory(id, includeVolumes: includeVolumes) { root in
            let (opened, stat) = try Self.openInRoot(root, path, id: id, followLink: followLink)
            defer { Syscall.close(opened) }
            let writer = RootfsTarWriter(descriptor: descriptor)
            let name = rootName ?? stat.name
            do {
                var info = Glibc.stat()
                guard fstat(opened, &info) == 0 else { throw SystemError(call: "fstat", errno: errno, path: path) }
                if name == "." {
                    guard stat.isDirectory else { throw RuntimeError.notADirectory(id: id, path: path) }
                    let directory = Glibc.open("/proc/self/fd/\(opened)", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                    guard directory >= 0 else { throw SystemError(call: "open", errno: errno, path: path) }
                    defer { Syscall.close(directory) }
                    try Self.archiveChildren(of: directory, prefix: "", writer: writer)
                } else {
                    try Self.archiveEntry(opened, name: name, info: info, linkTarget: stat.linkTarget, writer: writer)
                }
                try writer.finish()
            } catch let error as SystemError {
                throw RuntimeError.hostSetupFailed(error)
            }
            return stat
        }
    }

    /// `cp ... CONTAINER:PATH`: runs `body` with a host path that names
    /// the directory `path` inside the container (resolved inside its root,
    /// links followed there), for an extractor that then resolves every
    /// name below it in turn. Throws when `path` is missing or not a directory.
    public func withDirectory<T>(_ id: String, path: String, _ body: (String) throws -> T) throws -> T {
        try withRootDirectory(id) { root in
            let (opened, stat) = try Self.openInRoot(root, path, id: id, followLink: true)
            defer { Syscall.close(opened) }
            guard stat.isDirectory else { throw RuntimeError.notADirectory(id: id, path: path) }
            return try body("/proc/self/fd/\(opened)")
        }
    }

    /// Opens `path` inside `root` (`openPathOnly`; the last component not
    /// followed unless `followLink`) and says what it is.
    static func openInRoot(_ root: Int32, _ path: String, id: String, followLink: Bool) throws -> (Int32, ContainerPathStat) {
        let components = path.split(separator: "/").map(String.init).filter { $0 != "." }
        let name = components.last.map { $0 == ".." ? "/" : $0 } ?? "/"
        let opened = shoal_open_in_root(root, path.isEmpty ? "/" : path, openPathOnly | (followLink ? 0 : O_NOFOLLOW))
        guard opened >= 0 else {
            let code = shoal_errno()
            if code == ENOENT || code == ENOTDIR { throw RuntimeError.noSuchPath(id: id, path: path) }
            throw RuntimeError.hostSetupFailed(SystemError(call: "openat2", errno: code, path: path))
        }
        var info = Glibc.stat()
        guard fstat(opened, &info) == 0 else {
            let code = errno
            Syscall.close(opened)
            throw RuntimeError.hostSetupFailed(SystemError(call: "fstat", errno: code, path: path))
        }
        var linkTarget: String?
        if (info.st_mode & S_IFMT) == S_IFLNK {
            linkTarget = try? readLink(at: opened, name: "")
        }
        return (opened, ContainerPathStat(name: name, info: info, linkTarget: linkTarget))
    }

    /// The target of the symbolic link `name` in `directory` (`""`: the link `directory` itself, opened with openPathOnly).
    static func readLink(at directory: Int32, name: String) throws(SystemError) -> String {
        var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlinkat(directory, name, &target, target.count - 1)
        guard count >= 0 else { throw SystemError(call: "readlinkat", errno: errno, path: name) }
        return String(decoding: target[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Writes the entry `opened` (an openPathOnly descriptor) as `name`, and for
    /// a directory everything below it.
    static func archiveEntry(_ opened: Int32, name: String, info: stat, linkTarget: String?, writer: RootfsTarWriter) throws {
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            // Reopened for reading through the openPathOnly descriptor: the same file, never a path lookup.
            let file = Glibc.open("/proc/self/fd/\(opened)", O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
            guard file >= 0 else { throw SystemError(call: "open", errno: errno, path: name) }
            defer { Syscall.close(file) }
            try writer.add(name: name, info: info, linkName: "", contents: file)
        case S_IFDIR:
            try writer.add(name: name, info: info, linkName: "", contents: nil)
            let directory = Glibc.open("/proc/self/fd/\(opened)", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard directory >= 0 else { throw SystemError(call: "open", errno: errno, path: name) }
            defer { Syscall.close(directory) }
            try archiveChildren(of: directory, prefix: name + "/", writer: writer)
        case S_IFLNK:
            try writer.add(name: name, info: info, linkName: linkTarget ?? "", contents: nil)
        default:
            try writer.add(name: name, info: info, linkName: "", contents: nil)
        }
    }

    /// Kernel file systems whose contents a copy leaves out (what a
    /// container sees at /proc, /sys, /dev/pts, /dev/mqueue ...).
    static let kernelFilesystemTypes: Set<Int> = [
        0x9fa0, 0x6265_6572, 0x0027_e0eb, 0x6367_7270, 0x1cd1, 0x1980_0202, 0x7363_6673, 0x6462_6720, 0x7472_6163,
        0xcafe_4a11, 0x6165_676c, 0x6573_5543, 0x6265_6570, 0x4249_4e4d,
    ]

    /// Writes every entry of the directory `directory` (an O_RDONLY
    /// descriptor), sorted by name, as `prefix + name`, recursively; each
    /// entry is opened relative to its directory without following links.
    static func archiveChildren(of directory: Int32, prefix: String, writer: RootfsTarWriter) throws {
        if kernelFilesystemTypes.contains(shoal_filesystem_type("/proc/self/fd/\(directory)")) { return }
        let names = try listDirectory(directory, path: prefix)
        for name in names {
            let child = openat(directory, name, openPathOnly | O_NOFOLLOW | O_CLOEXEC)
            guard child >= 0 else {
                if errno == ENOENT { continue }  // gone meanwhile
                throw SystemError(call: "openat", errno: errno, path: prefix + name)
            }
            defer { Syscall.close(child) }
            var info = stat()
            guard fstat(child, &info) == 0 else { throw SystemError(call: "fstat", errno: errno, path: prefix + name) }
            let linkTarget = (info.st_mode & S_IFMT) == S_IFLNK ? try readLink(at: child, name: "") : nil
            try archiveEntry(child, name: prefix + name, info: info, linkTarget: linkTarget, writer: writer)
        }
    }

    // MARK: Stopped containers

    /// Mounts the container's root (its overlay, or a bind of its
    /// directory) at `mountPoint` with its volumes bound inside, as a
    /// start would arrange them. Each volume's target is resolved inside
    /// the mounted root (never a path on the host); one whose target does
    /// not exist yet is left out (the start creates it).
    func mountStoppedRoot(_ spec: ContainerSpec, at mountPoint: String) throws {
        Self.unmountStoppedRoot(mountPoint)  // a leftover of a daemon that died mid-copy
        // Its last run's root, when the unmount that follows an exit has not come yet.
        if let rootMountPoint = OverlayRootMount.mountPoint(of: spec) { OverlayRootMount.unmount(rootMountPoint) }
        do {
            try Syscall.makeDirectories(mountPoint, mode: 0o700)
            switch spec.rootFilesystem {
            case .directory(let path):
                try Syscall.run("mount", path: mountPoint) { Glibc.mount(path, mountPoint, nil, UInt(MS_BIND | MS_REC), nil) }
            case .overlay(let lower, let upper, let work, _):
                try Syscall.makeDirectories(upper)
                try Syscall.makeDirectories(work)
                let options = Self.overlayOptions(lower: lower, upper: upper, work: work)
                try Syscall.run("mount(overlay)", path: mountPoint) { Glibc.mount("overlay", mountPoint, "overlay", 0, options) }
            }
        } catch {
            rmdir(mountPoint)
            throw RuntimeError.hostSetupFailed(error)
        }
        do throws(SystemError) {
            let root = try Syscall.run("open", path: mountPoint) { Glibc.open(mountPoint, Self.openPathOnly | O_DIRECTORY | O_CLOEXEC) }
            defer { Syscall.close(root) }
            for mount in spec.mounts {
                let target = shoal_open_in_root(root, mount.destination, Self.openPathOnly)
                guard target >= 0 else { continue }
                defer { Syscall.close(target) }
                let targetPath = "/proc/self/fd/\(target)"
                try Syscall.run("mount(bind)", path: mount.destination) { Glibc.mount(mount.source, targetPath, nil, UInt(MS_BIND | MS_REC), nil) }
                if mount.readOnly {
                    try Syscall.run("mount(remount,ro)", path: mount.destination) {
                        Glibc.mount(nil, targetPath, nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY), nil)
                    }
                }
            }
        } catch {
            Self.unmountStoppedRoot(mountPoint)
            throw RuntimeError.hostSetupFailed(error)
        }
    }

    /// Detaches the mount (and the volumes under it) and removes the directory.
    static func unmountStoppedRoot(_ mountPoint: String) {
        while umount2(mountPoint, Int32(MNT_DETACH)) == 0 {}
        rmdir(mountPoint)
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension Syscall {
    /// Removes `path` and, when it is a directory, everything under it, by
    /// descriptor (`unlinkat` relative to each opened directory): no
    /// symbolic link is followed and no file system mounted below `path`
    /// is entered (its mount point stays, so `path` does too). Best effort,
    /// as `rm -rf`: what cannot be removed is left and the rest goes on.
    /// Returns whether `path` is gone.
    ///
    /// For a container's removal, which runs once per container: Foundation's
    /// `FileManager.removeItem` stats every entry by path several times.
    @discardableResult
    public static func removeTree(_ path: String) -> Bool {
        if unlink(path) == 0 || errno == ENOENT { return true }
        guard errno == EISDIR || errno == EPERM else { return false }
        var info = stat()
        guard lstat(path, &info) == 0 else { return errno == ENOENT }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { return false }
        let directory = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else { return false }
        removeEntries(of: directory, device: info.st_dev)
        return rmdir(path) == 0 || errno == ENOENT
    }

    /// Removes everything in the directory open as `directory` (and closes it).
    private static func removeEntries(of directory: Int32, device: dev_t) {
        guard let stream = fdopendir(directory) else {
            close(directory)
            return
        }
        defer { closedir(stream) }
        // Listed first, removed after: removing while reading may skip entries.
        var entries: [(name: [CChar], isDirectory: Bool?)] = []
        while let item = readdir(stream) {
            let name = withUnsafeBytes(of: &item.pointee.d_name) { raw in
                Array(raw.prefix(while: { $0 != 0 }).map { CChar(bitPattern: $0) })
            }
            if name == [46] || name == [46, 46] { continue }  // "." and ".."
            let type = item.pointee.d_type
            entries.append((name + [0], type == UInt8(DT_UNKNOWN) ? nil : type == UInt8(DT_DIR)))
        }
        let parent = dirfd(stream)
        for entry in entries {
            var isDirectory = entry.isDirectory
            var info = stat()
            if isDirectory != false {
                guard fstatat(parent, entry.name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
            }
            guard isDirectory == true else {
                _ = unlinkat(parent, entry.name, 0)
                continue
            }
            // Another file system mounted here: leave it (and its mount point).
            guard info.st_dev == device else { continue }
            let child = openat(parent, entry.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard child >= 0 else { continue }
            removeEntries(of: child, device: device)
            _ = unlinkat(parent, entry.name, AT_REMOVEDIR)
        }
    }
}

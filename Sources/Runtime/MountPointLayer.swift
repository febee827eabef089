import Posix
#if canImport(Glibc)
import Glibc
#endif

/// A read-only overlay layer, shared by every container the runtime starts
/// from image layers, holding the mount points it binds and mounts onto:
/// /etc/hosts, /etc/hostname, /etc/resolv.conf (empty files), /proc, /sys
/// and /dev. Docker makes such an "init" layer per container; one for all
/// does the same job, since a mount point's content never shows. Without it
/// every start created /etc (a copy-up) and the three files in the
/// container's writable layer, four new inodes each time, which on a file
/// system like this host's (ext4 without a journal) search past every inode
/// freed lately; `diff` and `commit` no longer see them either, as in Docker.
enum MountPointLayer {
    static let directoryName = "mount-points"
    static let directories = ["etc", "proc", "sys", "dev"]
    static let files = ["etc/hosts", "etc/hostname", "etc/resolv.conf"]

    /// Makes the layer at `path` if it is missing or incomplete (root-owned,
    /// directories 0755, files 0644 and empty); idempotent.
    static func ensure(at path: String) throws(SystemError) {
        try Syscall.makeDirectories(path, mode: 0o755)
        for directory in directories {
            try Syscall.makeDirectories(path + "/" + directory, mode: 0o755)
        }
        for file in files {
            let target = path + "/" + file
            var info = stat()
            if lstat(target, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && info.st_size == 0 { continue }
            // Anything else in its place (a file written to by mistake) is replaced by an empty file.
            unlink(target)
            let descriptor = try Syscall.open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o644)
            Syscall.close(descriptor)
        }
    }
}

import Foundation
import Posix
import CImagesLinux
#if canImport(Glibc)
import Glibc
#endif

/// Emptied directories of removed containers, kept (up to ``limit``) to
/// become the same directories of the next containers: a rename instead of
/// creating a directory and the files in it, and removing them later.
///
/// Why: on ext4 without a journal (this kind of host) every new inode is
/// searched for past all inodes freed in the last minutes of its group
/// (`recently_deleted`); a container created and removed every few
/// milliseconds made that search most of the daemon's CPU. A kept directory
/// keeps its inodes: the ones named in `reusable` stay (files truncated
/// when named in `emptied`, directories emptied), everything else goes.
///
/// Lives in `directory` (created if missing), which holds nothing else;
/// what a crash leaves there is at worst a directory still to be emptied
/// again, as ``keep(_:)`` moves one in only once it is emptied.
public final class SpareDirectories: @unchecked Sendable {
    public let directory: String
    public let limit: Int
    private let reusable: Set<String>
    private let emptied: Set<String>
    private let lock = NSLock()
    // Guarded by `lock`: the names of the kept directories.
    private var spares: [String]
    private var nextNumber = UInt64(0)

    public init(directory: String, limit: Int, reusable: Set<String>, emptied: Set<String> = []) {
        self.directory = directory
        self.limit = limit
        self.reusable = reusable
        self.emptied = emptied
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        spares = Self.names(in: directory)
        nextNumber = UInt64(UInt32.random(in: 0...UInt32.max)) << 32
    }

    /// Renames a kept directory to `path` (which must not exist); false when
    /// none is kept (the caller makes a new one).
    public func take(to path: String) -> Bool {
        while let name = lock.withLock({ spares.popLast() }) {
            if rename(directory + "/" + name, path) == 0 { return true }
        }
        return false
    }

    /// Empties the directory at `path` (a removed container's) and keeps it;
    /// removes it instead when ``limit`` directories are kept already or it
    /// cannot be emptied (something mounted in it). Returns whether `path` is gone.
    @discardableResult
    public func keep(_ path: String) -> Bool {
        let name = lock.withLock { () -> String? in
            guard spares.count < limit else { return nil }
            nextNumber += 1
            return String(nextNumber, radix: 16)
        }
        guard let name, empty(path), rename(path, directory + "/" + name) == 0 else { return Syscall.removeTree(path) }
        lock.withLock { spares.append(name) }
        return true
    }

    /// Removes what is not reusable, truncates or empties what is; false
    /// when a directory in it is a mount point (not ours to reuse).
    private func empty(_ path: String) -> Bool {
        var top = stat()
        guard lstat(path, &top) == 0, (top.st_mode & S_IFMT) == S_IFDIR else { return false }
        for name in Self.names(in: path) {
            let child = path + "/" + name
            var info = stat()
            guard lstat(child, &info) == 0 else { continue }
            let kind = info.st_mode & S_IFMT
            guard reusable.contains(name) else {
                if !Syscall.removeTree(child) { return false }
                continue
            }
            switch kind {
            case S_IFDIR:
                guard info.st_dev == top.st_dev else { return false }
                for entry in Self.names(in: child) where !Syscall.removeTree(child + "/" + entry) { return false }
                // As made anew: an upper directory is the root of the
                // container that used it, whose chmod, chown or setfattr of
                // "/" (and overlayfs's own marks) must not reach the next one.
                Self.removeExtendedAttributes(child)
                if info.st_uid != 0 || info.st_gid != 0, lchown(child, 0, 0) != 0 { return false }
                if info.st_mode & 0o7777 != Self.directoryMode, chmod(child, Self.directoryMode) != 0 { return false }
            case S_IFREG:
                if emptied.contains(name) && info.st_size > 0 && truncate(child, 0) != 0 { return false }
            default:
                break  // FIFOs: no data outlives their last open descriptor
            }
        }
        return true
    }

    /// The mode reusable directories are made with, and get back when kept.
    public static let directoryMode: mode_t = 0o755

    static func removeExtendedAttributes(_ path: String) {
        var buffer = [CChar](repeating: 0, count: 65536)
        let length = llistxattr(path, &buffer, buffer.count)
        guard length > 0 else { return }
        let names = buffer[..<length].split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        for name in names { _ = lremovexattr(path, name) }
    }

    /// Makes spares in the background until `count` (at most ``limit``) are
    /// kept, each laid out by `populate` as a kept one would be (its
    /// reusable entries, empty). A burst of new containers (a service scaled
    /// up, a batch of jobs) then takes these rather than making directories
    /// and files by the hundred and removing them after: on ext4 without a
    /// journal each inode made is a search past every one freed lately in
    /// its group, so a burst made and freed grows its own cost.
    public func prefill(to count: Int, mode: mode_t, populate: @escaping @Sendable (String) -> Void) {
        guard count > 0 else { return }
        BlockingThreadPool.shared.run { [self] in
            while let name = lock.withLock({ () -> String? in
                guard spares.count < min(count, limit) else { return nil }
                nextNumber += 1
                return String(nextNumber, radix: 16)
            }) {
                let path = directory + "/" + name
                guard mkdir(path, mode) == 0 else { return }
                populate(path)
                lock.withLock { spares.append(name) }
            }
        }
    }

    static func names(in path: String) -> [String] {
        guard let stream = opendir(path) else { return [] }
        defer { closedir(stream) }
        var names: [String] = []
        while let item = readdir(stream) {
            let name = withUnsafeBytes(of: &item.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

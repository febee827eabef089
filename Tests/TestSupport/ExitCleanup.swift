import Glibc
import Synchronization

/// Directory trees removed when the test process exits. The handler uses only
/// libc (opendir, unlink, rmdir): Foundation may already be tearing down inside atexit,
/// and a FileManager call there crashed a test process after all its tests passed.
public enum ExitCleanup {
    private static let paths = Mutex<[String]>([])

    /// Removes `path` (a directory tree, symlinks not followed) when the process exits.
    public static func removeTree(atExit path: String) {
        let first = paths.withLock { list in
            list.append(path)
            return list.count == 1
        }
        if first { atexit { ExitCleanup.removeAll() } }
    }

    private static func removeAll() {
        for path in paths.withLock({ $0 }) { removeTree(path) }
    }

    /// Depth-first unlink with opendir/readdir; symlinks are removed, not followed.
    private static func removeTree(_ path: String) {
        if unlink(path) == 0 || errno == ENOENT { return }
        guard let directory = opendir(path) else { return }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            removeTree(path + "/" + name)
        }
        closedir(directory)
        rmdir(path)
    }
}

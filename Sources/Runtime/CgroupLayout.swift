import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer

/// How the host mounts cgroups, detected from the filesystem type of the
/// cgroup root (see NOTES: `stat -f /sys/fs/cgroup`).
public enum CgroupLayout: String, Codable, Sendable {
    /// cgroup v1 controllers only (tmpfs with one cgroupfs per controller).
    case legacy
    /// cgroup v2 only (the root is cgroup2fs).
    case unified
    /// v1 controllers plus a cgroup2 mount at `unified/` (this CI host).
    case hybrid

    static let cgroup2Magic: Int = 0x6367_7270
    static let tmpfsMagic: Int = 0x0102_1994

    /// Reads the layout under `root` (normally /sys/fs/cgroup).
    public static func detect(root: String = "/sys/fs/cgroup") throws(SystemError) -> CgroupLayout {
        let rootType = try filesystemType(root)
        if rootType == cgroup2Magic { return .unified }
        let unified = root + "/unified"
        if Syscall.exists(unified), (try? filesystemType(unified)) == cgroup2Magic { return .hybrid }
        return .legacy
    }

    private static func filesystemType(_ path: String) throws(SystemError) -> Int {
        Int(try Syscall.run("statfs", path: path) { shoal_filesystem_type(path) })
    }

    /// The cgroup for one container at `parent/name` under `root`.
    public func makeCgroup(root: String = "/sys/fs/cgroup", parent: String, name: String) -> any Cgroup {
        let relative = parent + "/" + name
        switch self {
        case .unified:
            return CgroupV2(mountPoint: root, relativePath: relative)
        case .legacy:
            return CgroupV1(root: root, relativePath: relative)
        case .hybrid:
            return CgroupHybrid(
                v1: CgroupV1(root: root, relativePath: relative),
                unified: CgroupV2(mountPoint: root + "/unified", relativePath: relative, managesControllers: false))
        }
    }
}

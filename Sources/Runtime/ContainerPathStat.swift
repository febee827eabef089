#if canImport(Glibc)
import Glibc
#endif

/// What `cp` learns about a path inside a container before copying (as
/// Docker's `X-Docker-Container-Path-Stat`): its name, size, mode bits
/// (file type included, as `st_mode`), modification time and, for a
/// symbolic link, its target.
public struct ContainerPathStat: Codable, Sendable, Equatable {
    public var name: String
    public var size: Int64
    public var mode: UInt32
    /// Seconds since the Unix epoch.
    public var modifiedAt: Int64
    public var linkTarget: String?

    public init(name: String, size: Int64, mode: UInt32, modifiedAt: Int64, linkTarget: String? = nil) {
        self.name = name
        self.size = size
        self.mode = mode
        self.modifiedAt = modifiedAt
        self.linkTarget = linkTarget
    }

    init(name: String, info: stat, linkTarget: String?) {
        self.init(name: name, size: Int64(info.st_size), mode: UInt32(info.st_mode), modifiedAt: Int64(info.st_mtim.tv_sec),
                  linkTarget: linkTarget)
    }

    public var isDirectory: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
    public var isSymbolicLink: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFLNK) }
}

import Posix
#if canImport(Glibc)
import Glibc
#endif
import Foundation

extension ContainerRuntime {
    /// The container's writable layer as an OCI layer tar stream (the
    /// building block of `commit`): what the upper directory holds, with
    /// overlayfs whiteouts written as `.wh.NAME` files and opaque
    /// directories marked by `.wh..wh..opq`, so that extracting it on top of
    /// the image gives the container's root. Mount points the runtime added
    /// are left out, as in ``diff(_:)``. Written uncompressed to
    /// `descriptor` (the caller compresses and stores it).
    public func exportChanges(_ id: String, to descriptor: Int32) throws {
        let container = try lookup(id)
        let spec = container.state.spec
        guard case .overlay(_, let upper, _, _) = spec.rootFilesystem else {
            throw RuntimeError.noWritableLayer(id: id, operation: "export the changes of")
        }
        let runtimeMountPoints = Set(Self.networkFileMountPoints + spec.mounts.map(\.destination))
        let writer = RootfsTarWriter(descriptor: descriptor)
        do {
            try Self.walk(upper, relative: "") { relative, info, directory, name in
                let path = "/" + relative
                let parent = (relative as NSString).deletingLastPathComponent
                if runtimeMountPoints.contains(path) { return false }
                if Self.isWhiteout(info) {
                    try writer.addEmptyFile(name: parent.isEmpty ? ".wh." + name : parent + "/.wh." + name)
                    return false
                }
                // Opened relative to its directory, never through a path a running container could redirect.
                switch info.st_mode & S_IFMT {
                case S_IFREG:
                    let file = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                    guard file >= 0 else { throw SystemError(call: "openat", errno: errno, path: relative) }
                    defer { Syscall.close(file) }
                    try writer.add(name: relative, info: info, linkName: "", contents: file)
                case S_IFLNK:
                    try writer.add(name: relative, info: info, linkName: try Self.readLink(at: directory, name: name), contents: nil)
                default:
                    try writer.add(name: relative, info: info, linkName: "", contents: nil)
                }
                if (info.st_mode & S_IFMT) == S_IFDIR, Self.isOpaque(at: directory, name: name) {
                    try writer.addEmptyFile(name: relative + "/.wh..wh..opq")
                }
                return true
            }
            try writer.finish()
        } catch let error as SystemError {
            throw RuntimeError.hostSetupFailed(error)
        }
    }
}

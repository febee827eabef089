import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer
import Foundation

extension ContainerRuntime {
    /// `docker export`: the container's root filesystem as one tar stream
    /// written to `descriptor` (the caller owns it): for image layers, the
    /// merged view overlayfs shows (the writable layer over the image,
    /// whiteouts and opaque directories honoured); for a plain directory
    /// root, that directory. Volumes and the /proc, /dev, /sys mounts are
    /// not part of it, as in Docker.
    public func export(_ id: String, to descriptor: Int32) throws {
        let container = try lookup(id)
        let layers: [String]
        switch container.state.spec.rootFilesystem {
        case .directory(let path): layers = [path]
        case .overlay(let lower, let upper, _, _): layers = [upper] + lower
        }
        let writer = RootfsTarWriter(descriptor: descriptor)
        // Every layer's root opened once; below it nothing is reached by a
        // path, only relative to an open directory without following links,
        // so a running container that swaps a directory for a symbolic link
        // mid-export cannot make it read the host's files.
        var roots: [Int32] = []
        defer { roots.forEach(Syscall.close) }
        for layer in layers {
            let opened = Glibc.open(layer, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if opened >= 0 { roots.append(opened) } else if errno != ENOENT {
                throw RuntimeError.hostSetupFailed(SystemError(call: "open", errno: errno, path: layer))
            }
        }
        do {
            try Self.exportMerged(layers: roots, relative: "", writer: writer)
            try writer.finish()
        } catch let error as SystemError {
            throw RuntimeError.hostSetupFailed(error)
        }
    }

    /// Writes the merged directory `relative`, open in each of `layers`
    /// (topmost first; the caller owns the descriptors), then recurses into
    /// its directories. An entry the container removes or replaces while
    /// this runs is left out (or written as it is once opened), never
    /// followed.
    static func exportMerged(layers: [Int32], relative: String, writer: RootfsTarWriter) throws {
        var chosen: [String: (layer: Int32, info: stat)] = [:]
        var hidden = Set<String>()
        for layer in layers {
            let names = (try? listDirectory(layer, path: relative)) ?? []
            for name in names where chosen[name] == nil && !hidden.contains(name) {
                var info = stat()
                guard fstatat(layer, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                if isWhiteout(info) { hidden.insert(name) } else { chosen[name] = (layer, info) }
            }
            if isOpaque(layer) { break }  // the layers below are hidden here
        }
        for name in chosen.keys.sorted() {
            let (layer, listed) = chosen[name]!
            let child = relative.isEmpty ? name : relative + "/" + name
            switch listed.st_mode & S_IFMT {
            case S_IFDIR:
                // The directory merges with same-named directories below the layer that decided it.
                var below: [Int32] = []
                defer { below.forEach(Syscall.close) }
                for candidate in layers.drop(while: { $0 != layer }) {
                    let opened = openat(candidate, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if opened >= 0 {
                        below.append(opened)
                    } else if errno == ENOENT && candidate != layer {
                        continue
                    } else {
                        break  // a file, link or whiteout ends the merge (in the deciding layer: gone or replaced)
                    }
                }
                guard let top = below.first else { continue }  // gone or replaced since listed
                var opened = stat()
                guard fstat(top, &opened) == 0 else { continue }
                try writer.add(name: child, info: opened, linkName: "", contents: nil)
                try exportMerged(layers: below, relative: child, writer: writer)
            case S_IFREG:
                let file = openat(layer, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                guard file >= 0 else { continue }  // removed, or now a link
                defer { Syscall.close(file) }
                var opened = stat()
                guard fstat(file, &opened) == 0, (opened.st_mode & S_IFMT) == S_IFREG else { continue }
                try writer.add(name: child, info: opened, linkName: "", contents: file)
            case S_IFLNK:
                guard let target = try? readLink(at: layer, name: name) else { continue }
                try writer.add(name: child, info: listed, linkName: target, contents: nil)
            default:
                try writer.add(name: child, info: listed, linkName: "", contents: nil)
            }
        }
    }

    /// overlayfs marks a directory that hides everything below it with the
    /// trusted.overlay.opaque="y" attribute; `directory` is open.
    static func isOpaque(_ directory: Int32) -> Bool {
        shoal_overlay_opaque(directory) == 1
    }

    /// Whether the directory `name` in the open directory `parent` is opaque
    /// (opened without following a link; false when it is not a directory).
    static func isOpaque(at parent: Int32, name: String) -> Bool {
        let directory = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else { return false }
        defer { Syscall.close(directory) }
        return isOpaque(directory)
    }
}

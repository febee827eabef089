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
        do {
            try Self.exportMerged(layers: layers.filter { Syscall.exists($0) }, relative: "", writer: writer)
            try writer.finish()
        } catch let error as SystemError {
            throw RuntimeError.hostSetupFailed(error)
        }
    }

    /// Writes the merged directory `relative` of `layers` (topmost first,
    /// each holding this directory), then recurses into its directories.
    static func exportMerged(layers: [String], relative: String, writer: RootfsTarWriter) throws {
        var chosen: [String: (layer: String, info: stat)] = [:]
        var hidden = Set<String>()
        for layer in layers {
            let directory = relative.isEmpty ? layer : layer + "/" + relative
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for name in names where chosen[name] == nil && !hidden.contains(name) {
                var info = stat()
                guard lstat(directory + "/" + name, &info) == 0 else { continue }
                if isWhiteout(info) { hidden.insert(name) } else { chosen[name] = (layer, info) }
            }
            if isOpaque(directory) { break }  // the layers below are hidden here
        }
        for name in chosen.keys.sorted() {
            let (layer, info) = chosen[name]!
            let child = relative.isEmpty ? name : relative + "/" + name
            try writer.add(name: child, source: layer + "/" + child, info: info)
            guard (info.st_mode & S_IFMT) == S_IFDIR else { continue }
            // The directory merges with same-named directories below the layer that decided it.
            var below: [String] = []
            var reached = false
            for candidate in layers {
                if candidate == layer { reached = true }
                guard reached else { continue }
                var other = stat()
                guard lstat(candidate + "/" + child, &other) == 0 else { continue }
                if (other.st_mode & S_IFMT) != S_IFDIR { break }  // a file or whiteout ends the merge
                below.append(candidate)
            }
            try exportMerged(layers: below, relative: child, writer: writer)
        }
    }

    /// overlayfs marks a directory that hides everything below it with the
    /// trusted.overlay.opaque="y" attribute.
    static func isOpaque(_ directory: String) -> Bool {
        shoal_overlay_opaque(directory) == 1
    }
}

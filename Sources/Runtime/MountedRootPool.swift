import Foundation
import CImagesLinux
import Posix
#if canImport(Glibc)
import Glibc
#endif

/// Overlay roots of the image started last, mounted ahead of the starts
/// that take them, as the warm network namespaces are: an overlay mount
/// creates and frees four inodes in its work directory (overlayfs's feature
/// probes), and on ext4 without a journal each new inode is a search past
/// every inode freed lately in its group, which made the mount 1-3 ms of a
/// start's critical path on a busy host. A start whose writable layer is
/// one directory (`upper`, `work`, `merged`, as the engine lays it out)
/// swaps that directory with a pooled one in one rename (RENAME_EXCHANGE);
/// the overlay's mount moves with it.
///
/// Entries live in `directory` (`N/upper`, `N/work`, `N/merged` mounted);
/// a new runtime, pooling or not, unmounts and removes what an old one left
/// there (one that was killed: ``stop()`` removes them otherwise).
final class MountedRootPool: @unchecked Sendable {
    let directory: String
    let capacity: Int
    private let lock = NSLock()
    // Guarded by `lock`:
    private var lowers: [String]?    // the layers of the ready entries, top first
    private var layersIdentity: String?  // their layers' inode numbers when the entries were mounted
    private var ready: [String] = []  // entry names, their roots mounted
    private var bases: [String] = []  // entry names ready to mount (empty upper, work, merged)
    private var filling = false
    private var stopped = false
    private var nextNumber = UInt64(0)

    init(directory: String, capacity: Int) {
        self.directory = directory
        self.capacity = capacity
        // What a runtime that was killed left (a pool of its own or not).
        for name in SpareDirectories.names(in: directory) {
            OverlayRootMount.unmount(directory + "/" + name + "/merged")
            Syscall.removeTree(directory + "/" + name)
        }
        if capacity > 0 { _ = try? Syscall.makeDirectories(directory, mode: 0o700) }
    }

    /// Puts a root mounted on `layers` (top first) at `parent` (its
    /// `upper`, `work` and `merged`): true when it did, else the caller
    /// mounts one itself. Either way the pool refills for these layers.
    func take(layers: [String], parent: String) -> Bool {
        guard capacity > 0 else { return false }
        // An image removed and made again has the same paths but new
        // directories, which a pooled overlay would not see.
        let identity = Self.identity(of: layers)
        let (entry, dropped) = lock.withLock { () -> (String?, [String]) in
            guard !stopped else { return (nil, []) }
            var dropped: [String] = []
            if lowers != layers || layersIdentity != identity {  // another image: pool for it from now on
                dropped = ready
                ready = []
                lowers = layers
                layersIdentity = identity
            }
            return (ready.popLast(), dropped)
        }
        defer { refill(dropping: dropped) }
        guard let entry else { return false }
        let path = directory + "/" + entry
        // The container's directory, empty (a spare), takes the entry's place: the next base.
        if shoal_rename_exchange(path, parent) == 0 {
            lock.withLock { bases.append(entry) }
            return true
        }
        if errno == ENOENT && rename(path, parent) == 0 { return true }
        if errno == EXDEV { discard(close()) }  // writable layers on another file system: the pool cannot serve them
        discard([entry])
        return false
    }

    /// Unmounts and removes every entry; takes fail from now on.
    func stop() {
        for name in close() { Self.remove(directory + "/" + name) }
    }

    /// Stops taking and refilling; returns the entries to remove.
    private func close() -> [String] {
        lock.withLock {
            stopped = true
            defer { ready = []; bases = [] }
            return ready + bases
        }
    }

    private func refill(dropping dropped: [String]) {
        let start = lock.withLock { () -> Bool in
            guard !filling, !stopped else { return false }
            filling = true
            return true
        }
        if !dropped.isEmpty { discard(dropped) }
        guard start else { return }
        BlockingThreadPool.shared.run { [self] in
            while let (name, layers) = lock.withLock({ () -> (String, [String])? in
                guard !stopped, let lowers, ready.count < capacity else {
                    filling = false
                    return nil
                }
                if let base = bases.popLast() { return (base, lowers) }
                nextNumber += 1
                return (String(nextNumber, radix: 16), lowers)
            }) {
                let path = directory + "/" + name
                OverlayRootMount.unmount(path + "/merged")  // a base that was a container's writable layer
                for part in ["upper", "work", "merged"] { _ = try? Syscall.makeDirectories(path + "/" + part) }
                let options = ContainerRuntime.overlayOptions(lower: layers, upper: path + "/upper", work: path + "/work")
                guard Glibc.mount("overlay", path + "/merged", "overlay", 0, options) == 0 else {
                    Self.remove(path)
                    lock.withLock { filling = false }
                    return  // the layers went (an image removed): the next take tries again
                }
                let kept = lock.withLock { () -> Bool in
                    guard !stopped, lowers == layers else { return false }
                    ready.append(name)
                    return true
                }
                if !kept { Self.remove(path) }
            }
        }
    }

    private func discard(_ names: [String]) {
        BlockingThreadPool.shared.run { [directory] in
            for name in names { Self.remove(directory + "/" + name) }
        }
    }

    /// The layers' device and inode numbers, in order.
    static func identity(of layers: [String]) -> String {
        layers.map { path in
            var info = stat()
            return stat(path, &info) == 0 ? "\(info.st_dev):\(info.st_ino)" : "-"
        }.joined(separator: ",")
    }

    private static func remove(_ path: String) {
        OverlayRootMount.unmount(path + "/merged")
        Syscall.removeTree(path)
    }
}

import Foundation
import Posix
#if canImport(Glibc)
import Glibc
#endif

/// A starting container's overlay root, mounted by the runtime on a pool
/// thread while the start's host-side steps (network files, cgroup, network,
/// log pipes) go on, rather than by the child between clone and execve, where
/// every step is serial: an overlay mount costs about a millisecond on ext4
/// (overlayfs probes its work directory by creating and removing files).
///
/// The mount stays in the runtime's mount namespace while the container
/// runs, as Docker's does; the child binds it as its root. It goes once the
/// container has exited (``ContainerRuntime/releaseRoot(_:)``).
final class OverlayRootMount: @unchecked Sendable {
    let mountPoint: String
    private let finished = DispatchSemaphore(value: 0)
    private var failure: SystemError?  // written before `finished` is signalled, read after

    /// Begins mounting: makes the directories, removes what a runtime that
    /// died mid-start left mounted there, mounts the overlay.
    init(options: String, directories: [String], mountPoint: String) {
        self.mountPoint = mountPoint
        BlockingThreadPool.shared.run { [self] in
            do throws(SystemError) {
                for directory in directories + [mountPoint] { try Syscall.makeDirectories(directory) }
                Self.unmount(mountPoint)
                try Syscall.run("mount(overlay)", path: mountPoint) { Glibc.mount("overlay", mountPoint, "overlay", 0, options) }
            } catch {
                failure = error
            }
            finished.signal()
        }
    }

    /// A root mounted already (taken from the ``MountedRootPool``).
    init(mounted mountPoint: String) {
        self.mountPoint = mountPoint
        finished.signal()
    }

    /// Waits until it is mounted; throws why it could not be.
    func wait() throws(SystemError) {
        finished.wait()
        finished.signal()  // stays open for a later wait or abandon
        if let failure { throw failure }
    }

    /// For a start that failed: waits for the mount, then takes it away.
    func abandon() {
        finished.wait()
        Self.unmount(mountPoint)
    }

    /// Unmounts everything mounted at `mountPoint` (nothing: no-op).
    static func unmount(_ mountPoint: String) {
        while umount2(mountPoint, Int32(MNT_DETACH)) == 0 {}
    }

    /// Where an overlay root is mounted (by the runtime or by the child
    /// in a user namespace); nil for a directory root.
    static func mountPoint(of spec: ContainerSpec) -> String? {
        guard case .overlay(_, _, _, let mountPoint) = spec.rootFilesystem else { return nil }
        return mountPoint
    }
}

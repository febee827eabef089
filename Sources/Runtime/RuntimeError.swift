import Posix
#if canImport(Glibc)
import Glibc
#endif

/// Errors a user of the runtime can meet: each says what went wrong and what
/// to do about it.
public enum RuntimeError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The command is not in the container's `$PATH` (or the absolute path does
    /// not exist inside the root filesystem).
    case executableNotFound(String)
    /// The executable exists but may not be executed (mode bits, noexec).
    case permissionDenied(String)
    /// `user` names nobody in the root filesystem's /etc/passwd.
    case noSuchUser(String)
    /// `user` names a group missing from the root filesystem's /etc/group.
    case noSuchGroup(String)
    /// The working directory does not exist inside the container.
    case workingDirectoryNotFound(String)
    /// The root filesystem directory (or a layer) does not exist.
    case rootFilesystemNotFound(String)
    /// The spec cannot be turned into a container.
    case invalidSpec(String)
    /// No container with this id in the state directory.
    case noSuchContainer(String)
    /// A container with this id already exists.
    case containerExists(String)
    /// The operation needs another lifecycle state.
    case invalidState(id: String, state: ContainerStatus, operation: String)
    /// A step between clone and execve failed inside the child.
    case containerSetupFailed(SystemError)
    /// The runtime could not prepare the container on the host side.
    case hostSetupFailed(SystemError)
    /// diff/export/commit need image layers with a writable layer on top
    /// (an overlay root); the container runs on a plain directory.
    case noWritableLayer(id: String, operation: String)
    /// The cgroup freezer did not reach the wanted state (pause/unpause).
    case freezerFailed(id: String, SystemError)
    /// The spec maps ids through a user namespace, but the kernel refuses to
    /// create one for this process: it runs in a chroot (clone(CLONE_NEWUSER)
    /// is EPERM there), or user namespaces are disabled or restricted
    /// (`user.max_user_namespaces` is 0, an LSM policy, nesting limit).
    case userNamespacesUnavailable(SystemError)
    /// The bridge's subnet overlaps a route of the host (another network
    /// this machine reaches): containers would shadow it.
    case bridgeSubnetOverlaps(bridge: String, subnet: String, route: String, device: String)
    /// An interface with the bridge's name exists but cannot be used as it.
    case bridgeConflict(bridge: String, reason: String)
    /// Every address of the bridge's subnet is leased.
    case addressesExhausted(bridge: String, subnet: String)
    /// A published host port could not be bound (in use, address not here).
    case portUnavailable(address: String, port: UInt16, SystemError)
    /// `--link` names a container that is not on the bridge of this runtime.
    case linkUnavailable(container: String, reason: String)
    /// `cp`: the path does not exist inside the container.
    case noSuchPath(id: String, path: String)
    /// `cp`: the path inside the container must be a directory and is not.
    case notADirectory(id: String, path: String)

    public var description: String {
        switch self {
        case .executableNotFound(let name):
            return name.contains("/")
                ? "executable file not found: \(name): check the path inside the image"
                : "executable file not found in $PATH: \(name): check the command or set PATH in the environment"
        case .permissionDenied(let name):
            return "permission denied executing \(name): make it executable (chmod +x) or run as another user"
        case .noSuchUser(let user):
            return "no such user: \(user): add it to the image's /etc/passwd or use a numeric uid"
        case .noSuchGroup(let group):
            return "no such group: \(group): add it to the image's /etc/group or use a numeric gid"
        case .workingDirectoryNotFound(let path):
            return "working directory not found in the container: \(path): create it in the image or pick another"
        case .rootFilesystemNotFound(let path):
            return "root filesystem not found: \(path): import or pull the image first"
        case .invalidSpec(let reason):
            return "invalid container spec: \(reason)"
        case .noSuchContainer(let id):
            return "no such container: \(id): list containers to find its id"
        case .containerExists(let id):
            return "container \(id) already exists: pick another name or delete it first"
        case .invalidState(let id, let state, let operation):
            return "cannot \(operation) container \(id): it is \(state.rawValue)"
        case .containerSetupFailed(let error):
            return "container setup failed before exec: \(error)"
        case .hostSetupFailed(let error):
            return "could not prepare the container on the host: \(error)"
        case .noWritableLayer(let id, let operation):
            return "cannot \(operation) container \(id): it runs on a plain root directory, not on image layers with a writable layer; "
                + "only containers created from an image have changes to show"
        case .freezerFailed(let id, let error):
            return "could not freeze or thaw container \(id) through its cgroup: \(error): "
                + "check that the freezer controller is mounted (cgroup v1) or the kernel has cgroup.freeze (v2)"
        case .userNamespacesUnavailable(let error):
            return "user namespaces are unavailable here (the daemon runs in a chroot or user namespaces are disabled): "
                + "run without --userns-remap (no user namespace in the spec), or run the daemon outside a chroot "
                + "with user namespaces enabled (sysctl user.max_user_namespaces > 0) [\(error.call) failed: "
                + "\(String(cString: strerror(error.errno))), errno \(error.errno)]"
        case .bridgeSubnetOverlaps(let bridge, let subnet, let route, let device):
            return "subnet \(subnet) of bridge \(bridge) overlaps the host route \(route) on \(device): "
                + "configure a bridge subnet this machine does not route yet (the daemon's bridge subnet setting)"
        case .bridgeConflict(let bridge, let reason):
            return "cannot use bridge \(bridge): \(reason)"
        case .addressesExhausted(let bridge, let subnet):
            return "no free address left in \(subnet) on bridge \(bridge): remove unused containers or configure a larger subnet"
        case .portUnavailable(let address, let port, let error):
            let reason = error.errno == EADDRINUSE ? "it is already in use" : String(cString: strerror(error.errno))
            return "cannot publish on \(address):\(port): \(reason): pick another host port, or 0 (-P) for a free one"
        case .linkUnavailable(let container, let reason):
            return "cannot link to container \(container): \(reason)"
        case .noSuchPath(let id, let path):
            return "no such file or directory in container \(id): \(path)"
        case .notADirectory(let id, let path):
            return "\(path) in container \(id) is not a directory"
        }
    }
}

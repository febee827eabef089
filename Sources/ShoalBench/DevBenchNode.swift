import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A release `shoal dev` of a benchmark's own: the binary beside
/// shoal-bench, a data directory, socket, cgroup parent and node bridge no
/// other daemon uses, and the clean-up that removes all of them (the
/// daemon by its PID, the bridge, the cgroups and mounts, the files).
struct DevBenchNode {
    let shoal: String
    let processes: BenchProcesses
    let data: String
    let socket: String
    let cgroupParent: String
    let bridge: String
    let bridgeAddress: String

    /// `label` names the benchmark in errors and in its directory;
    /// `rootReason` says why it needs root.
    init(label: String, cgroupParent: String, bridge: String, bridgeAddress: String, rootReason: String) throws {
        shoal = try BenchLeftovers.shoalBinary()
        guard getuid() == 0 else { throw BenchmarkError(description: "\(label) \(rootReason): run it as root") }
        processes = try BenchProcesses(label: label)
        data = processes.directory + "/data"
        socket = data + "/shoal.sock"
        self.cgroupParent = cgroupParent
        self.bridge = bridge
        self.bridgeAddress = bridgeAddress
    }

    /// Starts `shoal dev` on this node's directory, socket, cgroup parent
    /// and bridge, with `flags` added.
    func startDev(_ flags: [String]) throws {
        try processes.start("shoal-dev", shoal, ["dev", "--data", data, "--host", "unix://" + socket,
                                                 "--cgroup-parent", cgroupParent, "--bridge", bridge, "--bip", bridgeAddress] + flags)
    }

    /// Stops the daemon, removes its bridge (the veths went with the
    /// containers' namespaces), cgroups, mounts and files; says on stderr
    /// which cgroups could not be removed.
    func cleanUp() {
        processes.stop("shoal-dev")
        BenchLeftovers.remove(bridge: bridge)
        BenchLeftovers.remove(cgroupParent: cgroupParent, mountsUnder: processes.directory)
        processes.stopAll()
    }
}

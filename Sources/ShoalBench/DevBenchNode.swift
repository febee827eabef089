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
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        shoal = directory + "/shoal"
        guard FileManager.default.isExecutableFile(atPath: shoal) else {
            throw BenchmarkError(description: "no shoal binary beside shoal-bench (\(shoal)): build it with `swift build -c release --product shoal`")
        }
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
        let remove = Process()
        remove.executableURL = URL(fileURLWithPath: "/sbin/ip")
        remove.arguments = ["link", "delete", bridge, "type", "bridge"]
        remove.standardError = FileHandle(forWritingAtPath: "/dev/null")
        if (try? remove.run()) != nil { remove.waitUntilExit() }
        var left: [String] = []
        let roots = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []).map { "/sys/fs/cgroup/" + $0 }
        for root in roots + ["/sys/fs/cgroup"] {
            let parent = root + "/" + cgroupParent
            guard FileManager.default.fileExists(atPath: parent) else { continue }
            ServicesBenchmark.killProcesses(in: parent)
            if !ServicesBenchmark.removeCgroup(parent) { left.append(parent) }
        }
        let mounts = ((try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? "").split(separator: "\n")
            .map { $0.split(separator: " ")[1] }.filter { $0.hasPrefix(processes.directory) }
        for mount in mounts.reversed() { umount2(String(mount), Int32(MNT_DETACH)) }
        if !left.isEmpty {
            FileHandle.standardError.write(Data("shoal-bench: cgroups left behind: \(left.joined(separator: " "))\n".utf8))
        }
        processes.stopAll()
    }
}

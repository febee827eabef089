import Daemon
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A release `shoal daemon` of a benchmark's own: data directory, socket,
/// cgroup parent and bridge (name and /24 subnet from the benchmark's pid)
/// in the benchmark's directory, busybox imported as busybox:latest from a
/// root filesystem. ``stop()`` ends it by PID and removes its cgroups,
/// mounts and bridge.
final class BenchDaemon: @unchecked Sendable {
    static let readyTimeoutSeconds = 60.0

    let shoal: String
    let processes: BenchProcesses
    let data: String
    let socket: String
    let cgroupParent: String
    let bridge: String

    init(processes: BenchProcesses) throws {
        shoal = try BenchLeftovers.shoalBinary()
        guard FileManager.default.isExecutableFile(atPath: (shoal as NSString).deletingLastPathComponent + "/shoal-monitor") else {
            throw BenchmarkError(description: "no shoal-monitor beside shoal-bench: build it with `swift build -c release --product shoal-monitor`")
        }
        self.processes = processes
        data = processes.directory + "/daemon"
        socket = processes.directory + "/shoal.sock"
        cgroupParent = "shoal-bench-daemon-\(getpid())"
        bridge = "shoalb\(getpid() % 1_000_000)"
    }

    /// Imports the image, starts the daemon and waits until it answers.
    func start(rootfs: String) throws {
        let tarball = processes.directory + "/busybox.tar"
        let tar = try processes.run("/usr/bin/tar", ["-C", rootfs, "-cf", tarball, "."])
        guard tar.status == 0 else { throw BenchmarkError(description: "tar of the busybox rootfs failed: \(tar.output)") }
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let imported = try processes.run(shoal, ["image", "import", tarball, "busybox:latest", "--data", data])
        guard imported.status == 0 else { throw BenchmarkError(description: "shoal image import failed: \(imported.output)") }
        try processes.start("shoal-daemon", shoal, ["daemon", "--data", data, "--host", "unix://" + socket, "--cgroup-parent", cgroupParent,
                                                    "--bridge", bridge, "--bip", "10.93.\(getpid() % 250).1/24"])
        let deadline = Date().addingTimeInterval(Self.readyTimeoutSeconds)
        while Date() < deadline {
            if try processes.run(shoal, ["container", "ps", "-q"], environment: environment).status == 0 {
                awaitWarmDirectories(until: deadline)
                return
            }
            guard processes.isRunning("shoal-daemon") else { throw BenchmarkError(description: "shoal daemon exited; its log: \(log())") }
            usleep(50_000)
        }
        throw BenchmarkError(description: "shoal daemon did not answer within \(Self.readyTimeoutSeconds) s; its log: \(log())")
    }

    /// The daemon's start-up work done (its spare container directories and
    /// writable layers made in the background): figures are of a daemon at
    /// rest, not of one still setting up.
    private func awaitWarmDirectories(until deadline: Date) {
        let wanted = DaemonSettings(dataDirectory: data).warmContainerDirectories
        func count(_ path: String) -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: data + path)) ?? []).count }
        while Date() < deadline, count("/containers/spare") < wanted || count("/local/rw-spare") < wanted {
            usleep(20_000)
        }
    }

    /// What the CLI needs to reach this daemon.
    var environment: [String: String] { ["SHOAL_HOST": "unix://" + socket] }

    func log() -> String {
        String(((try? String(contentsOfFile: processes.directory + "/shoal-daemon.log", encoding: .utf8)) ?? "").suffix(2000))
    }

    /// Ends the daemon by its PID, then what it left: processes in its
    /// cgroups (ours, killed by PID), the cgroups, mounts under its data
    /// directory and its bridge.
    func stop() {
        processes.stop("shoal-daemon")
        BenchLeftovers.remove(cgroupParent: cgroupParent, mountsUnder: data)
        BenchLeftovers.remove(bridge: bridge)
    }
}

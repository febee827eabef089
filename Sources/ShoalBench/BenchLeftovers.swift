import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// What a benchmark's own daemon needs found and leaves behind: the
/// release `shoal` beside shoal-bench, and at the end processes in the
/// daemon's cgroups (ours: a failed run can leave containers, killed by
/// PID), the cgroups themselves (deepest first), mounts under its
/// data directory and its node bridge.
enum BenchLeftovers {
    /// The release `shoal` in shoal-bench's own directory.
    static func shoalBinary() throws -> String {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let shoal = directory + "/shoal"
        guard FileManager.default.isExecutableFile(atPath: shoal) else {
            throw BenchmarkError(description: "no shoal binary beside shoal-bench (\(shoal)): build it with `swift build -c release --product shoal`")
        }
        return shoal
    }

    /// Kills what runs in `parent` (in every hierarchy that has it), removes
    /// it with its children and unmounts everything under `mountPrefix`;
    /// says on stderr which cgroups could not be removed.
    static func remove(cgroupParent parent: String, mountsUnder mountPrefix: String) {
        var left: [String] = []
        let roots = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []).map { "/sys/fs/cgroup/" + $0 }
        for root in roots + ["/sys/fs/cgroup"] {
            let path = root + "/" + parent
            guard FileManager.default.fileExists(atPath: path) else { continue }
            killProcesses(in: path)
            if !removeCgroup(path) { left.append(path) }
        }
        let mounts = ((try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? "").split(separator: "\n")
            .map { $0.split(separator: " ")[1] }.filter { $0.hasPrefix(mountPrefix) }
        for mount in mounts.reversed() { umount2(String(mount), Int32(MNT_DETACH)) }
        if !left.isEmpty {
            FileHandle.standardError.write(Data("shoal-bench: cgroups left behind: \(left.joined(separator: " "))\n".utf8))
        }
    }

    /// Deletes the daemon's node bridge (once the daemon is gone) through
    /// the runtime, so its ownership file in /run/shoal/bridges goes with
    /// it (`ip link delete` left one per run); says on stderr if it could not.
    static func remove(bridge: String) {
        do {
            try ContainerRuntime.removeBridge(named: bridge)
        } catch {
            FileHandle.standardError.write(Data("shoal-bench: bridge \(bridge) left behind: \(error)\n".utf8))
        }
    }

    static func killProcesses(in cgroup: String) {
        let children = ((try? FileManager.default.contentsOfDirectory(atPath: cgroup)) ?? []).map { cgroup + "/" + $0 }
        for child in children where child.hasSuffix("cgroup.procs") || FileManager.default.fileExists(atPath: child + "/cgroup.procs") {
            let file = child.hasSuffix("cgroup.procs") ? child : child + "/cgroup.procs"
            if !child.hasSuffix("cgroup.procs") { killProcesses(in: child) }
            for line in ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n") {
                if let pid = Int32(line) { kill(pid, SIGKILL) }
            }
        }
    }

    /// rmdir of a cgroup and its children, retried for a while: the kernel finishes tearing down a memory cgroup asynchronously.
    static func removeCgroup(_ path: String) -> Bool {
        let children = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path + "/" + $0, isDirectory: &isDirectory) && isDirectory.boolValue
        }
        for child in children { _ = removeCgroup(path + "/" + child) }
        for _ in 0..<50 {
            if rmdir(path) == 0 || errno == ENOENT { return true }
            usleep(100_000)
        }
        return false
    }
}

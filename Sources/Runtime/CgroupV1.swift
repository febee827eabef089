import Posix
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A container's cgroup on cgroup v1: one directory per controller
/// hierarchy (`root/<controller>/<relativePath>`).
public struct CgroupV1: Cgroup {
    /// The hierarchies a container joins. cpuset is left out on purpose: a
    /// new v1 cpuset group starts with no CPUs and refuses processes until
    /// cpuset.cpus/mems are copied down, and Shoal does not pin CPUs yet.
    public static let controllers = ["memory", "cpu", "cpuacct", "pids", "devices", "freezer"]

    /// Docker's default device allowlist: create any node, but open only
    /// the harmless ones (null, zero, full, random, urandom, tty, console,
    /// ptmx, ptys, tun). Without this CAP_MKNOD would open the host's disks.
    public static let allowedDevices = [
        "c *:* m", "b *:* m",
        "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
        "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
    ]

    public let root: String
    public let relativePath: String
    /// One entry per distinct hierarchy: the controllers it carries (a
    /// hierarchy may be mounted as "cpu,cpuacct") and the container's directory.
    let hierarchies: [(controllers: Set<String>, directory: String)]

    public init(root: String = "/sys/fs/cgroup", relativePath: String) {
        self.root = root
        self.relativePath = relativePath
        var seen = Set<String>()
        var hierarchies: [(Set<String>, String)] = []
        for controller in CgroupV1.controllers {
            let mount = root + "/" + controller
            guard let resolved = realpath(mount, nil) else { continue }
            let canonical = String(cString: resolved)
            free(resolved)
            if seen.insert(canonical).inserted {
                var names = Set(canonical.split(separator: "/").last.map { $0.split(separator: ",").map(String.init) } ?? [])
                names.insert(controller)
                hierarchies.append((names, canonical + "/" + relativePath))
            }
        }
        self.hierarchies = hierarchies
    }

    public var directories: [String] { hierarchies.map(\.directory) }
    public var procsFiles: [String] { directories.map { $0 + "/cgroup.procs" } }
    public var selfJoinFiles: [String] { directories.map { $0 + "/tasks" } }
    public var cloneIntoDirectory: String? { nil }

    func directory(_ controller: String) -> String? {
        hierarchies.first { $0.controllers.contains(controller) }?.directory
    }

    public func create(limits: ResourceLimits) throws(SystemError) {
        for (_, directory) in hierarchies {
            try Syscall.makeDirectories(directory)
        }
        if let memory = directory("memory") {
            if let limit = limits.memoryLimitBytes {
                try Syscall.writeFile(memory + "/memory.limit_in_bytes", String(limit))
                let swapFile = memory + "/memory.memsw.limit_in_bytes"
                if Syscall.exists(swapFile) {
                    try Syscall.writeFile(swapFile, String(limit + (limits.memorySwapLimitBytes ?? 0)))
                }
            }
        }
        if let cpu = directory("cpu") {
            if let quota = limits.cpuQuotaMicroseconds {
                try Syscall.writeFile(cpu + "/cpu.cfs_period_us", String(limits.cpuPeriodMicroseconds))
                try Syscall.writeFile(cpu + "/cpu.cfs_quota_us", String(quota))
            }
            if let weight = limits.cpuWeight {
                try Syscall.writeFile(cpu + "/cpu.shares", String(ResourceLimits.shares(forWeight: weight)))
            }
        }
        if let pids = directory("pids"), let limit = limits.pidsLimit {
            try Syscall.writeFile(pids + "/pids.max", String(limit))
        }
        if let devices = directory("devices") {
            try Syscall.writeFile(devices + "/devices.deny", "a")
            for rule in CgroupV1.allowedDevices {
                try Syscall.writeFile(devices + "/devices.allow", rule)
            }
        }
    }

    public func attach(pid: Int32) throws(SystemError) {
        for file in procsFiles {
            try Syscall.writeFile(file, String(pid))
        }
    }

    public func oomKillCount() -> UInt64 {
        guard let memory = directory("memory"),
              let text = try? Syscall.readFile(memory + "/memory.oom_control")
        else { return 0 }
        return Self.keyedValue(text, "oom_kill") ?? 0
    }

    public func statistics() -> CgroupStatistics {
        CgroupStatistics(
            memoryUsageBytes: directory("memory").flatMap { Self.readNumber($0 + "/memory.usage_in_bytes") },
            pidsCurrent: directory("pids").flatMap { Self.readNumber($0 + "/pids.current") },
            cpuUsageMicroseconds: directory("cpuacct").flatMap { Self.readNumber($0 + "/cpuacct.usage") }.map { $0 / 1_000 })
    }

    public func processIDs() -> [Int32] {
        guard let first = procsFiles.first else { return [] }
        return Self.readPIDs(first)
    }

    public func setFrozen(_ frozen: Bool, timeout: Duration) throws(SystemError) {
        guard let freezer = directory("freezer") else {
            throw SystemError(call: "freeze", errno: ENOTSUP, path: root + "/freezer (no freezer hierarchy mounted)")
        }
        let wanted = frozen ? "FROZEN" : "THAWED"
        let file = freezer + "/freezer.state"
        // FREEZING while tasks are still being stopped.
        try Self.writeAndAwait(file, wanted, timeout: timeout) {
            (try? Syscall.readFile(file))?.trimmingCharacters(in: .whitespacesAndNewlines) == wanted
        }
    }

    public func destroy(timeout: Duration) throws(SystemError) {
        for (_, directory) in hierarchies {
            try Self.removeDirectory(directory, timeout: timeout) {
                // Anything left is the container's own (an exec'd process
                // that outlived init in a shared pid namespace): end it.
                for pid in Self.readPIDs(directory + "/cgroup.procs") { kill(pid, SIGKILL) }
            }
        }
    }
}

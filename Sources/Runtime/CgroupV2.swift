import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer
import Foundation

/// A container's cgroup on the unified hierarchy: one directory
/// `mountPoint/relativePath`, limits in memory.max, cpu.max, cpu.weight and
/// pids.max, OOM kills counted in memory.events.
///
/// Device access control on v2 needs an eBPF program (as runc/crun attach);
/// not done yet, see the runtime notes.
public struct CgroupV2: Cgroup {
    public static let wantedControllers = ["cpu", "memory", "pids"]

    public let mountPoint: String
    public let relativePath: String
    /// False for the hybrid layout's cgroup2 mount, which holds no controller
    /// Shoal uses: the container is only placed there, as runc does.
    public let managesControllers: Bool

    public init(mountPoint: String = "/sys/fs/cgroup", relativePath: String, managesControllers: Bool = true) {
        self.mountPoint = mountPoint
        self.relativePath = relativePath
        self.managesControllers = managesControllers
    }

    public var directory: String { mountPoint + "/" + relativePath }
    public var directories: [String] { [directory] }
    public var procsFiles: [String] { [directory + "/cgroup.procs"] }
    public var selfJoinFiles: [String] { [] }
    public var cloneIntoDirectory: String? { directory }

    public func create(limits: ResourceLimits) throws(SystemError) {
        var current = mountPoint
        for component in relativePath.split(separator: "/") {
            if managesControllers {
                try enableControllers(in: current)
            }
            current += "/" + component
            if mkdir(current, 0o755) == -1 && errno != EEXIST {
                throw SystemError(call: "mkdir", errno: errno, path: current)
            }
        }
        guard managesControllers else { return }
        if let limit = limits.memoryLimitBytes {
            try Syscall.writeFile(directory + "/memory.max", String(limit), create: !isCgroupfs)
            try writeIfPresent("memory.swap.max", String(limits.memorySwapLimitBytes ?? 0))
        }
        if let quota = limits.cpuQuotaMicroseconds {
            try Syscall.writeFile(directory + "/cpu.max", "\(quota) \(limits.cpuPeriodMicroseconds)", create: !isCgroupfs)
        }
        if let weight = limits.cpuWeight {
            try Syscall.writeFile(directory + "/cpu.weight", String(weight), create: !isCgroupfs)
        }
        if let limit = limits.pidsLimit {
            try Syscall.writeFile(directory + "/pids.max", String(limit), create: !isCgroupfs)
        }
    }

    /// Whether `mountPoint` is a real cgroup2 filesystem (false for the fake
    /// trees the unit tests build, where interface files are created).
    var isCgroupfs: Bool {
        shoal_filesystem_type(mountPoint) == CgroupLayout.cgroup2Magic
    }

    /// swap accounting may be off (no memory.swap.max): then there is no swap to limit.
    private func writeIfPresent(_ file: String, _ value: String) throws(SystemError) {
        let path = directory + "/" + file
        if Syscall.exists(path) || !isCgroupfs {
            try Syscall.writeFile(path, value, create: !isCgroupfs)
        }
    }

    /// Delegates the controllers Shoal needs to the children of `parent`.
    private func enableControllers(in parent: String) throws(SystemError) {
        let available = (try? Syscall.readFile(parent + "/cgroup.controllers"))
            .map { Set($0.split(whereSeparator: \.isWhitespace).map(String.init)) }
        let enabled = (try? Syscall.readFile(parent + "/cgroup.subtree_control"))
            .map { Set($0.split(whereSeparator: \.isWhitespace).map(String.init)) } ?? []
        let missing = CgroupV2.wantedControllers.filter { (available?.contains($0) ?? true) && !enabled.contains($0) }
        guard !missing.isEmpty else { return }
        let command = missing.map { "+" + $0 }.joined(separator: " ")
        if isCgroupfs {
            try Syscall.writeFile(parent + "/cgroup.subtree_control", command)
        } else {
            let all = (enabled.union(missing)).sorted().joined(separator: " ")
            try Syscall.writeFile(parent + "/cgroup.subtree_control", all, create: true)
        }
    }

    public func attach(pid: Int32) throws(SystemError) {
        try Syscall.writeFile(directory + "/cgroup.procs", String(pid), create: !isCgroupfs)
    }

    public func oomKillCount() -> UInt64 {
        guard managesControllers, let text = try? Syscall.readFile(directory + "/memory.events") else { return 0 }
        return Self.keyedValue(text, "oom_kill") ?? 0
    }

    public func statistics() -> CgroupStatistics {
        let cpu = (try? Syscall.readFile(directory + "/cpu.stat")).flatMap { Self.keyedValue($0, "usage_usec") }
        return CgroupStatistics(
            memoryUsageBytes: Self.readNumber(directory + "/memory.current"),
            pidsCurrent: Self.readNumber(directory + "/pids.current"),
            cpuUsageMicroseconds: cpu)
    }

    public func processIDs() -> [Int32] {
        Self.readPIDs(directory + "/cgroup.procs")
    }

    public func setFrozen(_ frozen: Bool, timeout: Duration) throws(SystemError) {
        let events = directory + "/cgroup.events"
        try Self.writeAndAwait(directory + "/cgroup.freeze", frozen ? "1" : "0", timeout: timeout) {
            (try? Syscall.readFile(events)).flatMap { Self.keyedValue($0, "frozen") } == (frozen ? 1 : 0)
        }
    }

    public func destroy(timeout: Duration) throws(SystemError) {
        let killFile = directory + "/cgroup.kill"
        try Self.removeDirectory(directory, timeout: timeout) {
            if Syscall.exists(killFile) {
                try? Syscall.writeFile(killFile, "1")
            } else {
                for pid in processIDs() { kill(pid, SIGKILL) }
            }
        }
    }
}

import Posix
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One container's cgroup, whatever the host's layout: the runtime calls
/// `create` before the container's process is cloned, `attach` while the
/// child waits on its sync pipe, reads `oomKillCount` after it exits, then
/// `destroy`. v1, v2 and hybrid implement it (as in runc and crun).
public protocol Cgroup: Sendable {
    /// Every directory of this cgroup (one per v1 hierarchy, or one).
    var directories: [String] { get }
    /// The cgroup.procs files (one per hierarchy).
    var procsFiles: [String] { get }
    /// The files a single-threaded process writes "0" into to join by
    /// itself: on v1 each hierarchy's `tasks`, which moves only the writing
    /// thread and so skips the kernel's global threadgroup lock that a
    /// cgroup.procs write waits on (an RCU grace period: 5-15 ms at random
    /// on this kind of host, more than a whole container start).
    var selfJoinFiles: [String] { get }
    /// The cgroup2 directory a new process is cloned straight into (clone3
    /// CLONE_INTO_CGROUP: no migration, no lock); nil on v1.
    var cloneIntoDirectory: String? { get }
    /// Makes the directories and applies `limits`.
    func create(limits: ResourceLimits) throws(SystemError)
    /// Moves `pid` into the cgroup.
    func attach(pid: Int32) throws(SystemError)
    /// How many times the kernel's OOM killer killed a process in this cgroup.
    func oomKillCount() -> UInt64
    /// Current usage, for `stats` and node resource reports.
    func statistics() -> CgroupStatistics
    /// The processes in the cgroup, by host pid.
    func processIDs() -> [Int32]
    /// Freezes (`true`) or thaws every process of the cgroup (v1 freezer,
    /// v2 cgroup.freeze) and returns once the kernel reports the new state,
    /// or throws ETIMEDOUT after `timeout` (a task stuck in the kernel).
    func setFrozen(_ frozen: Bool, timeout: Duration) throws(SystemError)
    /// Kills what is left and removes the directories, retrying while the
    /// kernel finishes tearing the cgroup down (up to `timeout`).
    func destroy(timeout: Duration) throws(SystemError)
}

/// Usage counters of one cgroup. `nil` where the host does not report it.
public struct CgroupStatistics: Codable, Equatable, Sendable {
    public var memoryUsageBytes: UInt64?
    public var pidsCurrent: UInt64?
    public var cpuUsageMicroseconds: UInt64?

    public init(memoryUsageBytes: UInt64? = nil, pidsCurrent: UInt64? = nil, cpuUsageMicroseconds: UInt64? = nil) {
        self.memoryUsageBytes = memoryUsageBytes
        self.pidsCurrent = pidsCurrent
        self.cpuUsageMicroseconds = cpuUsageMicroseconds
    }
}

extension Cgroup {
    /// Parses `key value` lines (memory.events, memory.oom_control, cpu.stat).
    static func keyedValue(_ text: String, _ key: String) -> UInt64? {
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == key { return UInt64(fields[1]) }
        }
        return nil
    }

    static func readNumber(_ path: String) -> UInt64? {
        (try? Syscall.readFile(path)).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Writes `value` to `file`, then polls until `reached()` (the kernel
    /// freezes tasks one by one, asynchronously).
    static func writeAndAwait(_ file: String, _ value: String, timeout: Duration, reached: () -> Bool) throws(SystemError) {
        try Syscall.writeFile(file, value)
        let deadline = ContinuousClock.now + timeout
        while !reached() {
            if ContinuousClock.now >= deadline { throw SystemError(call: "write", errno: ETIMEDOUT, path: file) }
            usleep(1_000)
        }
    }

    static func readPIDs(_ procsFile: String) -> [Int32] {
        guard let text = try? Syscall.readFile(procsFile) else { return [] }
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    /// rmdir, retried while the kernel still holds the cgroup (EBUSY right
    /// after the last process exited). A missing directory is success.
    static func removeDirectory(_ path: String, timeout: Duration, beforeRetry: () -> Void) throws(SystemError) {
        let deadline = ContinuousClock.now + timeout
        while true {
            if rmdir(path) == 0 { return }
            let code = errno
            if code == ENOENT { return }
            if code == EINTR { continue }
            if code != EBUSY || ContinuousClock.now >= deadline {
                throw SystemError(call: "rmdir", errno: code, path: path)
            }
            beforeRetry()
            usleep(2_000)
        }
    }
}

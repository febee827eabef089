import Posix
/// The hybrid layout: limits live in the v1 hierarchies, and the container
/// is also placed in the cgroup2 mount (which only carries hugetlb on this
/// kind of host), as runc does, so tools that read the unified tree see it.
public struct CgroupHybrid: Cgroup {
    public let v1: CgroupV1
    public let unified: CgroupV2

    public var directories: [String] { v1.directories + unified.directories }
    public var procsFiles: [String] { v1.procsFiles + unified.procsFiles }
    public var selfJoinFiles: [String] { v1.selfJoinFiles }
    public var cloneIntoDirectory: String? { unified.cloneIntoDirectory }

    public func create(limits: ResourceLimits) throws(SystemError) {
        try v1.create(limits: limits)
        do {
            try unified.create(limits: limits)
        } catch {
            try? v1.destroy(timeout: .milliseconds(100))
            throw error
        }
    }

    public func attach(pid: Int32) throws(SystemError) {
        try v1.attach(pid: pid)
        try unified.attach(pid: pid)
    }

    public func oomKillCount() -> UInt64 { v1.oomKillCount() }
    public func statistics() -> CgroupStatistics { v1.statistics() }
    public func processIDs() -> [Int32] { v1.processIDs() }
    /// The v1 freezer: the cgroup2 mount of a hybrid host has no cgroup.freeze
    /// for v1-managed tasks' controllers to honour.
    public func setFrozen(_ frozen: Bool, timeout: Duration) throws(SystemError) {
        try v1.setFrozen(frozen, timeout: timeout)
    }

    public func destroy(timeout: Duration) throws(SystemError) {
        try v1.destroy(timeout: timeout)
        try unified.destroy(timeout: timeout)
    }
}

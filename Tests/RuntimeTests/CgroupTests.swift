import Foundation
import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The v2 code path against a fake cgroupfs tree (a plain directory with
/// the root's interface files), and layout detection on this host.
@Suite("Cgroups")
struct CgroupTests {
    final class FakeTree {
        let root = NSTemporaryDirectory() + "shoal-fake-cgroup-\(UUID().uuidString.prefix(8))"
        init(controllers: String = "cpuset cpu io memory hugetlb pids") throws {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try controllers.write(toFile: root + "/cgroup.controllers", atomically: true, encoding: .utf8)
            try "".write(toFile: root + "/cgroup.subtree_control", atomically: true, encoding: .utf8)
        }
        func read(_ path: String) -> String? {
            try? String(contentsOfFile: root + "/" + path, encoding: .utf8)
        }
        deinit { try? FileManager.default.removeItem(atPath: root) }
    }

    @Test func v2WritesLimitsAndDelegatesControllers() throws {
        let tree = try FakeTree()
        let cgroup = CgroupV2(mountPoint: tree.root, relativePath: "shoal/web-1")
        try cgroup.create(limits: ResourceLimits(
            memoryLimitBytes: 32 << 20, memorySwapLimitBytes: 8 << 20,
            cpuQuotaMicroseconds: 150_000, cpuWeight: 200, pidsLimit: 64))
        #expect(tree.read("cgroup.subtree_control") == "cpu memory pids")
        #expect(tree.read("shoal/cgroup.subtree_control") == "cpu memory pids")
        #expect(tree.read("shoal/web-1/memory.max") == "33554432")
        #expect(tree.read("shoal/web-1/memory.swap.max") == "8388608")
        #expect(tree.read("shoal/web-1/cpu.max") == "150000 100000")
        #expect(tree.read("shoal/web-1/cpu.weight") == "200")
        #expect(tree.read("shoal/web-1/pids.max") == "64")
        #expect(cgroup.procsFiles == [tree.root + "/shoal/web-1/cgroup.procs"])
        // A v2 process is cloned into the directory; nothing to write itself into.
        #expect(cgroup.cloneIntoDirectory == tree.root + "/shoal/web-1")
        #expect(cgroup.selfJoinFiles.isEmpty)
    }

    /// v1 joins through `tasks` (the writer alone, no global lock); the
    /// hybrid layout adds its cgroup2 directory to clone into.
    @Test func v1JoinsThroughTasksAndHybridClonesIntoTheUnifiedTree() throws {
        let hybrid = CgroupLayout.hybrid.makeCgroup(root: "/sys/fs/cgroup", parent: "shoal", name: "c2")
        #expect(hybrid.cloneIntoDirectory == "/sys/fs/cgroup/unified/shoal/c2")
        #expect(hybrid.selfJoinFiles.allSatisfy { $0.hasSuffix("/shoal/c2/tasks") && !$0.contains("/unified/") })
        #expect(hybrid.selfJoinFiles.count == hybrid.directories.count - 1)
        let v1 = CgroupV1(relativePath: "shoal/c3")
        #expect(v1.cloneIntoDirectory == nil)
        #expect(v1.selfJoinFiles == v1.directories.map { $0 + "/tasks" })
    }

    @Test func v2OnlyEnablesControllersTheParentHas() throws {
        let tree = try FakeTree(controllers: "memory pids")
        let cgroup = CgroupV2(mountPoint: tree.root, relativePath: "shoal/a")
        try cgroup.create(limits: ResourceLimits())
        #expect(tree.read("cgroup.subtree_control") == "memory pids")
        #expect(tree.read("shoal/a/memory.max") == nil, "no limit, no write")
    }

    @Test func v2ReadsOOMKillsAndUsage() throws {
        let tree = try FakeTree()
        let cgroup = CgroupV2(mountPoint: tree.root, relativePath: "shoal/b")
        try cgroup.create(limits: ResourceLimits())
        #expect(cgroup.oomKillCount() == 0)
        try "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n"
            .write(toFile: tree.root + "/shoal/b/memory.events", atomically: true, encoding: .utf8)
        #expect(cgroup.oomKillCount() == 2)
        try "4096\n".write(toFile: tree.root + "/shoal/b/memory.current", atomically: true, encoding: .utf8)
        try "3\n".write(toFile: tree.root + "/shoal/b/pids.current", atomically: true, encoding: .utf8)
        try "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"
            .write(toFile: tree.root + "/shoal/b/cpu.stat", atomically: true, encoding: .utf8)
        #expect(cgroup.statistics() == CgroupStatistics(memoryUsageBytes: 4096, pidsCurrent: 3, cpuUsageMicroseconds: 1500))
        try cgroup.attach(pid: 4242)
        #expect(tree.read("shoal/b/cgroup.procs") == "4242")
        #expect(cgroup.processIDs() == [4242])
    }

    @Test func hybridPlacesTheContainerInBothTrees() {
        let cgroup = CgroupLayout.hybrid.makeCgroup(root: "/sys/fs/cgroup", parent: "shoal", name: "c1")
        #expect(cgroup.directories.contains("/sys/fs/cgroup/unified/shoal/c1"))
        #expect(cgroup.directories.contains("/sys/fs/cgroup/memory/shoal/c1") || !FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory"))
    }

    @Test func cpuWeightConvertsToShares() {
        let weights = [1, 100, 10_000]
        let cgroup = CgroupV1(root: "/nonexistent", relativePath: "x")
        #expect(cgroup.directories.isEmpty)
        // OCI: weight = 1 + (shares - 2) * 9999 / 262142, so shares 2...262144.
        #expect(weights.map { 2 + ($0 - 1) * 262_142 / 9_999 } == [2, 2597, 262_144])
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/sys/fs/cgroup")))
    func layoutOfThisHost() throws {
        let layout = try CgroupLayout.detect()
        // Cross-check with the mount table instead of statfs.
        let mounts = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8).split(separator: "\n")
            .map { $0.split(separator: " ").map(String.init) }
        func type(_ point: String) -> String? { mounts.last { $0.count > 2 && $0[1] == point }?[2] }
        if type("/sys/fs/cgroup") == "cgroup2" {
            #expect(layout == .unified)
        } else if type("/sys/fs/cgroup/unified") == "cgroup2" {
            #expect(layout == .hybrid)
        } else {
            #expect(layout == .legacy)
        }
    }

    @Test func detectOnAPlainDirectoryIsLegacyAndMissingIsAnError() throws {
        let tree = try FakeTree()
        // Not a cgroup2 mount: legacy (the caller finds no controllers there).
        #expect(try CgroupLayout.detect(root: tree.root) == .legacy)
        #expect(throws: SystemError.self) { try CgroupLayout.detect(root: tree.root + "/missing") }
    }
}

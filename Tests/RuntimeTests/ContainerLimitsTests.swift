import Foundation
import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Container limits", .serialized, .enabled(if: TestImage.available, "needs root and busybox-static"),
       .timeLimit(.minutes(5)))
struct ContainerLimitsTests {
    @Test func memoryLimitOOMKillIsReported() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        // dd's 100 MiB buffer is touched page by page by read(): beyond 32 MiB the OOM killer ends it.
        let result = try fixture.run("hog", ["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"]) {
            $0.limits.memoryLimitBytes = 32 << 20
        }
        #expect(result.status == .signaled(SIGKILL))
        #expect(result.status?.code == 137)
        #expect(result.state.oomKilled)
        for directory in fixture.cgroupDirectories("hog") {
            #expect(!FileManager.default.fileExists(atPath: directory))
        }
        // Under the limit nothing is killed.
        let small = try fixture.run("small", ["dd", "if=/dev/zero", "of=/dev/null", "bs=4M", "count=1"]) {
            $0.limits.memoryLimitBytes = 32 << 20
        }
        #expect(small.status == .exited(0))
        #expect(!small.state.oomKilled)
    }

    @Test func pidsLimitBoundsAForkBomb() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let limit = 24
        let container = try fixture.runtime.run(fixture.spec("bomb", ["sh", "-c", "bomb() { bomb | bomb & }; bomb; echo lit; sleep 1000"]) {
            $0.limits.pidsLimit = limit
        })
        let pidsFile = try #require(fixture.cgroupDirectories("bomb").first { $0.contains("/pids/") }) + "/pids.current"
        var highest = 0
        let deadline = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: pidsFile, encoding: .utf8), let count = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                highest = max(highest, count)
            }
            usleep(10_000)
        }
        #expect(highest > 1 && highest <= limit, "pids.current peaked at \(highest)")
        #expect(try fixture.eventually { try fixture.runtime.logs("bomb").standardError.contains("can't fork") })
        let status = try fixture.runtime.stop("bomb", gracePeriod: .zero)
        #expect(status == .signaled(SIGKILL))
        #expect(container.state.status == .exited)
        for directory in fixture.cgroupDirectories("bomb") {
            #expect(!FileManager.default.fileExists(atPath: directory), "cgroup left: \(directory)")
        }
    }

    /// The init joins every one of its cgroups before its execve: each v1
    /// hierarchy through `tasks` (no global lock) and the cgroup2 tree (the
    /// unified hierarchy of a hybrid host, or the only one) by being cloned
    /// into it; so do its children and an exec'd process.
    @Test func theInitAndItsChildrenAreInEveryCgroupOfTheContainer() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.run(fixture.spec("member", ["sh", "-c", "sleep 1000 & sleep 1000"]))
        let pid = try #require(fixture.runtime.container("member")?.state.pid)
        let directories = fixture.cgroupDirectories("member")
        #expect(!directories.isEmpty)
        #expect(try fixture.eventually {
            directories.allSatisfy { directory in
                ((try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8)) ?? "").split(separator: "\n").count == 2
            }
        }, "init and its child in each of \(directories)")
        for directory in directories {
            let members = try String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8).split(separator: "\n")
            #expect(members.contains(Substring(String(pid))), "init \(pid) not in \(directory)")
        }
        // As /proc says it: the cgroup2 line (hybrid's unified tree, or the only one) names the container's cgroup.
        let lines = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8).split(separator: "\n").map(String.init)
        let leaf = "/" + ((directories.first ?? "") as NSString).lastPathComponent
        if fixture.runtime.cgroupLayout != .legacy {
            #expect(lines.contains { $0.hasPrefix("0::") && $0.hasSuffix(leaf) }, "\(lines)")
        }
        // An exec'd process lands in exactly the init's cgroups.
        let exec = try fixture.runtime.exec("member", ExecSpec(command: ["cat", "/proc/self/cgroup"]))
        #expect(Set(String(decoding: exec.standardOutput, as: UTF8.self).split(separator: "\n").map(String.init)) == Set(lines))
        _ = try fixture.runtime.stop("member", gracePeriod: .zero)
    }

    @Test func cpuAndPidLimitsAreWrittenToTheCgroup() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.run(fixture.spec("limited", ["sleep", "1000"]) {
            $0.limits = ResourceLimits(
                memoryLimitBytes: 64 << 20, cpuQuotaMicroseconds: ResourceLimits.cpus(0.5), cpuWeight: 100, pidsLimit: 50)
        })
        let directories = fixture.cgroupDirectories("limited")
        func read(_ controller: String, _ file: String) -> String? {
            directories.first { $0.contains("/\(controller)/") }
                .flatMap { try? String(contentsOfFile: $0 + "/" + file, encoding: .utf8) }?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if fixture.runtime.cgroupLayout != .unified {
            #expect(read("memory", "memory.limit_in_bytes") == String(64 << 20))
            #expect(read("cpu", "cpu.cfs_quota_us") == "50000")
            #expect(read("cpu", "cpu.cfs_period_us") == "100000")
            #expect(read("cpu", "cpu.shares") == "2597")
            #expect(read("pids", "pids.max") == "50")
            let pid = try #require(fixture.runtime.container("limited")?.state.pid)
            #expect(read("memory", "cgroup.procs")?.split(separator: "\n").contains(Substring(String(pid))) == true)
        }
        let stats = try fixture.runtime.statistics("limited")
        #expect(stats.pidsCurrent == 1)
        #expect((stats.memoryUsageBytes ?? 0) > 0)
        try fixture.runtime.stop("limited", gracePeriod: .zero)
    }
}

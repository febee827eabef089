import Foundation
import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Container pause", .serialized, .enabled(if: TestImage.available, "needs root and busybox-static"),
       .timeLimit(.minutes(5)))
struct ContainerPauseTests {
    /// Lines the ticking container has written so far.
    func ticks(_ fixture: RuntimeFixture, _ id: String) throws -> Int {
        try fixture.runtime.logs(id).standardOutput.split(separator: "\n").count
    }

    @Test func aPausedContainerMakesNoProgressUntilUnpaused() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.run(fixture.spec("ticker", ["sh", "-c", "while true; do echo tick; sleep 0.02; done"]))
        #expect(try fixture.eventually { try ticks(fixture, "ticker") >= 3 })

        try fixture.runtime.pause("ticker")
        let container = try #require(fixture.runtime.container("ticker"))
        #expect(container.state.status == .paused)
        if let freezer = fixture.cgroupDirectories("ticker").first(where: { $0.contains("/freezer/") }) {
            #expect(try String(contentsOfFile: freezer + "/freezer.state", encoding: .utf8) == "FROZEN\n")
        }
        // Frozen: whatever was written before the freeze lands, then nothing more.
        usleep(300_000)
        let frozenAt = try ticks(fixture, "ticker")
        usleep(1_000_000)
        #expect(try ticks(fixture, "ticker") == frozenAt, "a frozen container kept writing")
        // The process state as the kernel reports it: stopped in the freezer, not running.
        let pid = try #require(container.state.pid)
        #expect(kill(pid, 0) == 0)
        #expect(throws: RuntimeError.invalidState(id: "ticker", state: .paused, operation: "exec in")) {
            try fixture.runtime.exec("ticker", ExecSpec(command: ["true"]))
        }
        #expect(throws: RuntimeError.invalidState(id: "ticker", state: .paused, operation: "pause")) {
            try fixture.runtime.pause("ticker")
        }
        // The paused state survives a daemon restart.
        try fixture.reopen()
        #expect(fixture.runtime.container("ticker")?.state.status == .paused)

        try fixture.runtime.unpause("ticker")
        #expect(fixture.runtime.container("ticker")?.state.status == .running)
        #expect(try fixture.eventually { try ticks(fixture, "ticker") >= frozenAt + 3 }, "no progress after unpause")
        #expect(throws: RuntimeError.invalidState(id: "ticker", state: .running, operation: "unpause")) {
            try fixture.runtime.unpause("ticker")
        }
        try fixture.runtime.stop("ticker", gracePeriod: .zero)
    }

    @Test func stoppingAPausedContainerThawsItSoTheSignalLands() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.run(fixture.spec("frozen", ["sh", "-c", "trap 'exit 3' TERM; echo ready; while true; do sleep 0.05; done"]))
        #expect(try fixture.eventually { try fixture.runtime.logs("frozen").standardOutput == "ready\n" })
        try fixture.runtime.pause("frozen")
        let status = try fixture.runtime.stop("frozen", gracePeriod: .seconds(20))
        #expect(status == .exited(3), "SIGTERM reached the thawed shell")
        #expect(fixture.runtime.container("frozen")?.state.status == .exited)
        #expect(throws: RuntimeError.invalidState(id: "frozen", state: .exited, operation: "pause")) {
            try fixture.runtime.pause("frozen")
        }
    }

    /// The v2 path (cgroup.freeze) on a real cgroup2 mount: the unified
    /// hierarchy of this hybrid host, or the root of a unified one.
    @Test func cgroupV2FreezeStopsABusyProcess() throws {
        let layout = try CgroupLayout.detect()
        guard layout != .legacy else { return }
        let mountPoint = layout == .hybrid ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup"
        let parent = "shoal-freeze-test-\(getpid())"
        let cgroup = CgroupV2(mountPoint: mountPoint, relativePath: parent + "/busy", managesControllers: false)
        try cgroup.create(limits: ResourceLimits())
        defer {
            try? cgroup.destroy(timeout: .seconds(5))
            rmdir(mountPoint + "/" + parent)
        }
        let busy = Process()
        busy.executableURL = URL(fileURLWithPath: TestImage.busybox)
        busy.arguments = ["sh", "-c", "while :; do :; done"]
        try busy.run()
        defer { kill(busy.processIdentifier, SIGKILL); busy.waitUntilExit() }
        let pid = busy.processIdentifier
        try cgroup.attach(pid: pid)
        /// utime + stime of the process, in clock ticks.
        func cpuTicks() -> Int {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            return fields.count > 13 ? (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0) : -1
        }
        try cgroup.setFrozen(true, timeout: .seconds(10))
        #expect(try String(contentsOfFile: cgroup.directory + "/cgroup.events", encoding: .utf8).contains("frozen 1"))
        let frozenAt = cpuTicks()
        usleep(500_000)
        #expect(cpuTicks() == frozenAt, "a frozen process kept using CPU")
        try cgroup.setFrozen(false, timeout: .seconds(10))
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        #expect(fixture.eventually { cpuTicks() > frozenAt }, "no CPU after thawing")
    }

    /// The whole v2 code path for a container (create, attach, freeze,
    /// remove) on a real cgroup2 mount: the unified hierarchy of this hybrid
    /// host (its controllers are held by v1, so no limits), or the root of a
    /// unified host; a legacy host has none.
    @Test func theUnifiedLayoutRunsAContainerOnARealCgroup2Mount() throws {
        let layout = try CgroupLayout.detect()
        guard layout != .legacy else { return }
        let mountPoint = layout == .hybrid ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup"
        let token = UUID().uuidString.prefix(8).lowercased()
        let stateDirectory = NSTemporaryDirectory() + "shoal-runtime-v2-test-\(token)"
        let parent = "shoal-v2-test-\(token)"
        let runtime = try ContainerRuntime(configuration: .init(stateDirectory: stateDirectory, cgroupRoot: mountPoint, cgroupParent: parent,
                                                                cgroupLayout: .unified,
                                                                bridge: BridgeConfiguration(name: "shoalv2t\(getpid() % 100_000)",
                                                                                            subnet: IPv4Subnet("10.94.\(getpid() % 250).0/24")!)))
        defer {
            for state in runtime.list() { try? runtime.delete(state.id, force: true) }
            runtime.detach()
            rmdir(mountPoint + "/" + parent)
            try? FileManager.default.removeItem(atPath: stateDirectory)
        }
        #expect(runtime.cgroupLayout == .unified)
        let directory = mountPoint + "/" + parent + "/v2box"
        try runtime.run(ContainerSpec(id: "v2box", rootFilesystem: .directory(TestImage.rootfs!),
                                      command: ["sh", "-c", "grep '^0::' /proc/self/cgroup; while true; do echo tick; sleep 0.02; done"]))
        func eventually(_ condition: () -> Bool) -> Bool {
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline, !condition() { usleep(20_000) }
            return condition()
        }
        #expect(eventually { ((try? runtime.logs("v2box").standardOutput) ?? "").contains("tick") })
        // The init is a member of its own v2 cgroup (the path as the host's cgroup namespace shows it).
        let firstLine = try runtime.logs("v2box").standardOutput.split(separator: "\n").first.map(String.init) ?? ""
        #expect(firstLine.hasSuffix("/" + parent + "/v2box"), "\(firstLine)")
        let pid = try #require(runtime.list().first { $0.id == "v2box" }?.pid)
        let members = try String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8)
        #expect(members.split(separator: "\n").contains(Substring(String(pid))), "\(members)")
        // Freeze and thaw through cgroup.freeze.
        try runtime.pause("v2box")
        #expect(try String(contentsOfFile: directory + "/cgroup.events", encoding: .utf8).contains("frozen 1"))
        let frozen = try runtime.logs("v2box").standardOutput.count
        usleep(300_000)
        #expect(try runtime.logs("v2box").standardOutput.count == frozen, "output while frozen")
        try runtime.unpause("v2box")
        #expect(eventually { ((try? runtime.logs("v2box").standardOutput.count) ?? 0) > frozen })
        // Stopped and removed: the cgroup goes with it.
        _ = try runtime.stop("v2box", gracePeriod: .seconds(1))
        try runtime.delete("v2box")
        #expect(!FileManager.default.fileExists(atPath: directory))
    }
}

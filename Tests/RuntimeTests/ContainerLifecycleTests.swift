import Foundation
@testable import Runtime
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Container lifecycle", .serialized, .enabled(if: TestImage.available, "needs root and busybox-static"),
       .timeLimit(.minutes(5)))
struct ContainerLifecycleTests {
    /// Creates run side by side (the lock covers only the id): of eight
    /// creates of one id exactly one wins, the others are told it exists
    /// and leave nothing; sixteen different ids are all created.
    @Test func concurrentCreatesReserveTheirIdsAndNoMore() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let outcomes = Mutex<[String]>([])
        let runtime = fixture.runtime
        let specs = (0..<24).map { fixture.spec($0 < 8 ? "same" : "distinct-\($0)", ["true"]) }
        DispatchQueue.concurrentPerform(iterations: 24) { index in
            let id = specs[index].id
            do {
                try runtime.create(specs[index])
                outcomes.withLock { $0.append("created \(id)") }
            } catch RuntimeError.containerExists(let existing) {
                outcomes.withLock { $0.append("exists \(existing)") }
            } catch {
                outcomes.withLock { $0.append("failed \(error)") }
            }
        }
        let all = outcomes.withLock { $0 }
        #expect(all.filter { $0 == "created same" }.count == 1, "\(all)")
        #expect(all.filter { $0 == "exists same" }.count == 7, "\(all)")
        #expect(all.filter { $0.hasPrefix("created distinct-") }.count == 16, "\(all)")
        #expect(Set(fixture.runtime.list().map(\.id)) == Set(["same"] + (8..<24).map { "distinct-\($0)" }))
        let directories = try FileManager.default.contentsOfDirectory(atPath: fixture.stateDirectory + "/containers")
        #expect(directories.count == 17, "\(directories.sorted())")
    }

    @Test func stopEscalatesToSIGKILLAfterTheGracePeriod() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.run(fixture.spec("stubborn", ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"]))
        #expect(try fixture.eventually { try fixture.runtime.logs("stubborn").standardOutput == "ready\n" })
        let started = ContinuousClock.now
        let status = try fixture.runtime.stop("stubborn", gracePeriod: .seconds(1))
        let elapsed = ContinuousClock.now - started
        #expect(status == .signaled(SIGKILL))
        #expect(elapsed >= .seconds(1), "SIGKILL came before the grace period ended")
        #expect(elapsed < .seconds(8))
    }

    @Test func stopReturnsEarlyWhenTheContainerHonoursSIGTERM() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.run(fixture.spec("polite", ["sh", "-c", "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done"]))
        #expect(try fixture.eventually { try fixture.runtime.logs("polite").standardOutput == "ready\n" })
        let started = ContinuousClock.now
        let status = try fixture.runtime.stop("polite", gracePeriod: .seconds(30))
        #expect(status == .exited(0))
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(try fixture.runtime.logs("polite").standardOutput == "ready\nbye\n")
        // Stopping again reports the same status; starting again is refused.
        #expect(try fixture.runtime.stop("polite") == .exited(0))
        #expect(throws: RuntimeError.invalidState(id: "polite", state: .exited, operation: "start")) {
            try fixture.runtime.start("polite")
        }
    }

    @Test func execSeesTheContainersView() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.run(fixture.spec("target", ["sleep", "1000"]) { $0.hostname = "exec-box" })
        let hostname = try fixture.runtime.exec("target", ExecSpec(command: ["hostname"]))
        #expect(hostname.status == .exited(0))
        #expect(hostname.output == "exec-box\n")

        let ps = try fixture.runtime.exec("target", ExecSpec(command: ["ps", "-o", "pid,args"]))
        let rows = ps.output.split(separator: "\n").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(rows.first == "1 sleep 1000", "\(ps.output)")
        #expect(rows.count == 2, "init and ps only: \(ps.output)")

        let view = try fixture.runtime.exec("target", ExecSpec(
            command: ["sh", "-c", "cat /proc/self/cgroup | grep memory; grep CapBnd /proc/self/status; pwd; id -u; echo $EXTRA"],
            environment: ["EXTRA=yes"], user: "app", workingDirectory: "/tmp"))
        #expect(view.output.contains("target"), "exec joins the container's cgroup: \(view.output)")
        #expect(view.output.contains("CapBnd:\t00000000a80425fb"))
        #expect(view.output.hasSuffix("/tmp\n1000\nyes\n"), "\(view.output)")

        let failing = try fixture.runtime.exec("target", ExecSpec(command: ["sh", "-c", "echo err >&2; exit 4"]))
        #expect(failing.status == .exited(4))
        #expect(failing.errorOutput == "err\n")

        #expect(throws: RuntimeError.executableNotFound("nosuch")) {
            try fixture.runtime.exec("target", ExecSpec(command: ["nosuch"]))
        }
        // The container is unaffected by all of the above.
        #expect(fixture.runtime.container("target")?.state.status == .running)
        try fixture.runtime.stop("target", gracePeriod: .zero)
        #expect(throws: RuntimeError.invalidState(id: "target", state: .exited, operation: "exec in")) {
            try fixture.runtime.exec("target", ExecSpec(command: ["true"]))
        }
    }

    @Test func aNewRuntimeReadoptsRunningContainers() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let first = try fixture.runtime.run(fixture.spec("survivor", ["sh", "-c", "echo before; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after; sleep 1000"]))
        let pid = try #require(first.state.pid)
        #expect(try fixture.eventually { try fixture.runtime.logs("survivor").standardOutput == "before\n" })

        // Drop the runtime (daemon restart) and open the same state directory again.
        try fixture.reopen()
        let adopted = try #require(fixture.runtime.container("survivor"))
        #expect(adopted.state.status == .running)
        #expect(adopted.state.pid == pid)
        #expect(fixture.runtime.list().map(\.id) == ["survivor"])

        // The new runtime drains the logs and can exec and stop.
        let exec = try fixture.runtime.exec("survivor", ExecSpec(command: ["sh", "-c", "touch /tmp/go && echo ok"]))
        #expect(exec.output == "ok\n")
        #expect(try fixture.eventually { try fixture.runtime.logs("survivor").standardOutput == "before\nafter\n" })
        let status = try fixture.runtime.stop("survivor", gracePeriod: .seconds(1))
        // The monitor (init's parent) recorded the status.
        #expect(status == .signaled(SIGKILL))
        #expect(kill(pid, 0) == -1)
        for directory in fixture.cgroupDirectories("survivor") {
            #expect(!FileManager.default.fileExists(atPath: directory))
        }
    }

    @Test func aContainerKilledWhileNobodyWatchedShowsItsSignal() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let container = try fixture.runtime.run(fixture.spec("lost", ["sleep", "1000"]))
        let pid = try #require(container.state.pid)
        let monitorPid = try #require(container.state.monitorPid, "no shoal-monitor: is it built beside the tests?")
        fixture.runtime.detach()
        kill(pid, SIGKILL)
        #expect(fixture.eventually { kill(monitorPid, 0) == -1 || processState(monitorPid) == "Z" })
        try fixture.reopen()
        let state = try #require(fixture.runtime.container("lost")?.state)
        #expect(state.status == .exited)
        #expect(state.exitStatus == .signaled(SIGKILL))
        for directory in fixture.cgroupDirectories("lost") {
            #expect(!FileManager.default.fileExists(atPath: directory))
        }
    }

    @Test func theInitsParentIsItsMonitorProcess() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let container = try fixture.runtime.run(fixture.spec("watched", ["sleep", "1000"]))
        let pid = try #require(container.state.pid)
        let monitorPid = try #require(container.state.monitorPid, "no shoal-monitor: is it built beside the tests?")
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        #expect(status.split(separator: "\n").contains("PPid:\t\(monitorPid)"), "\(status)")
        #expect(try String(contentsOfFile: "/proc/\(monitorPid)/comm", encoding: .utf8) == "shoal-monitor\n")
        // The monitor holds nothing of ours: only /dev/null and its exit record.
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(monitorPid)/fd").sorted()
        #expect(descriptors == ["0", "1", "2", "3"], "\(descriptors)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(monitorPid)/fd/3")
            == fixture.stateDirectory + "/containers/watched/exit-status")
        #expect(try fixture.runtime.stop("watched", gracePeriod: .zero) == .signaled(SIGKILL))
        #expect(fixture.eventually { kill(monitorPid, 0) == -1 }, "the monitor was reaped")
    }

    @Test func exitCodeOOMAndFinishTimeSurviveADaemonRestart() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        // USR1: allocate past the limit (the OOM killer ends dd), then exit 42.
        let container = try fixture.runtime.run(fixture.spec("offline", ["sh", "-c",
            "trap 'dd if=/dev/zero of=/dev/null bs=100M count=1; exit 42' USR1; echo ready; while true; do sleep 0.05; done"]) {
            $0.limits.memoryLimitBytes = 32 << 20
        })
        #expect(try fixture.eventually { try fixture.runtime.logs("offline").standardOutput == "ready\n" })
        let pid = try #require(container.state.pid)
        let monitorPid = try #require(container.state.monitorPid, "no shoal-monitor: is it built beside the tests?")
        // The daemon goes away; the container ends while nobody watches.
        fixture.runtime.detach()
        let signalled = Date()
        kill(pid, SIGUSR1)
        #expect(fixture.eventually(timeout: .seconds(60)) { kill(monitorPid, 0) == -1 || processState(monitorPid) == "Z" })
        let ended = Date()
        // A new runtime on the same state directory.
        try fixture.reopen()
        let state = try #require(fixture.runtime.container("offline")?.state)
        #expect(state.status == .exited)
        #expect(state.exitStatus == .exited(42))
        #expect(state.oomKilled)
        let finishedAt = try #require(state.finishedAt)
        #expect(finishedAt >= signalled.addingTimeInterval(-1) && finishedAt <= ended.addingTimeInterval(1),
                "finish time \(finishedAt) is when the container ended (\(signalled)...\(ended)), not when the runtime looked")
        #expect(try fixture.runtime.wait("offline", timeout: .seconds(1)) == .exited(42))
        for directory in fixture.cgroupDirectories("offline") {
            #expect(!FileManager.default.fileExists(atPath: directory))
        }
    }

    @Test("a deleted container's directory serves the next container, emptied: none of its output shows")
    func aDeletedContainersDirectoryIsReused() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.run(fixture.spec("first", ["echo", "first output"]))
        #expect(try fixture.runtime.wait("first", timeout: .seconds(20)) == .exited(0))
        #expect(try fixture.runtime.logs("first").standardOutput == "first output\n")
        var first = stat()
        #expect(lstat(fixture.stateDirectory + "/containers/first", &first) == 0)
        try fixture.runtime.delete("first")
        fixture.runtime.awaitCleanup()
        try fixture.runtime.run(fixture.spec("second", ["echo", "second output"]))
        var second = stat()
        #expect(lstat(fixture.stateDirectory + "/containers/second", &second) == 0 && second.st_ino == first.st_ino, "not reused")
        #expect(try fixture.runtime.wait("second", timeout: .seconds(20)) == .exited(0))
        #expect(try fixture.runtime.logs("second").standardOutput == "second output\n")
        try fixture.runtime.delete("second")
    }

    @Test("state writes swap the file with its temporary: the container's two state files keep their inodes, and state.json always reads whole")
    func stateWritesSwapTheirFiles() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let container = try fixture.runtime.run(fixture.spec("swapped", ["sleep", "1000"]) { $0.network = .none })
        let path = fixture.stateDirectory + "/containers/swapped/state.json"
        func inodes() -> Set<UInt64> {
            Set([path, path + ".tmp"].compactMap { (try? FileManager.default.attributesOfItem(atPath: $0))?[.systemFileNumber] as? UInt64 })
        }
        let running = inodes()
        #expect(running.count == 2, "created, then swapped at start: both files exist")
        try fixture.runtime.kill("swapped", signal: SIGKILL)
        #expect(container.wait(timeout: .seconds(20)) != nil)
        #expect(inodes() == running, "the exit's write made a new file")
        let onDisk = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        #expect(onDisk["status"] as? String == "exited")
        try fixture.runtime.delete("swapped")
    }

    /// A reused directory still holds its last container's state files
    /// (spare directories keep them): that state is not adopted under the new id.
    @Test("a container directory whose state was never written (a create cut short) is taken away by the next runtime, also when it holds another container's state",
          arguments: [false, true])
    func anUnwrittenContainerDirectoryIsTakenAway(holdingAnotherContainersState: Bool) throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let directory = fixture.stateDirectory + "/containers/halfmade"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if holdingAnotherContainersState {
            var state = try fixture.runtime.create(fixture.spec("before", ["true"])).state
            try fixture.runtime.delete("before")
            state.status = .exited
            var encoder = ContainerStateEncoder()
            let bytes = Data(try encoder.encode(state))
            for name in ["state.json", "state.json.tmp"] {
                #expect(FileManager.default.createFile(atPath: directory + "/" + name, contents: bytes))
            }
        } else {
            #expect(FileManager.default.createFile(atPath: directory + "/state.json", contents: Data()))
        }
        try fixture.reopen()
        #expect(!FileManager.default.fileExists(atPath: directory))
        #expect(fixture.runtime.list().isEmpty)
    }

    @Test("a state emptied by a machine crash (written, not flushed) falls back to the one before it, and a lasting container's create is flushed")
    func anEmptiedStateFallsBackToThePreviousOne() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.create(fixture.spec("survivor", ["true"]))
        try fixture.runtime.synchronize("survivor")
        try fixture.runtime.start("survivor")
        _ = fixture.runtime.container("survivor")?.wait(timeout: .seconds(30))
        let path = fixture.stateDirectory + "/containers/survivor/state.json"
        // Two writes after the create: the temporary holds the one before the newest.
        #expect(FileManager.default.fileExists(atPath: path + ".tmp"))
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        try fixture.reopen()
        let state = try #require(fixture.runtime.container("survivor")?.state)
        #expect(state.spec.command == ["true"])
        #expect(throws: RuntimeError.self) { try fixture.runtime.synchronize("nobody") }
        try fixture.runtime.delete("survivor", force: true)
    }

    @Test func stateIsJSONOnDisk() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.create(fixture.spec("ondisk", ["true"]) { $0.user = "app" })
        let path = fixture.stateDirectory + "/containers/ondisk/state.json"
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        #expect(json["status"] as? String == "created")
        #expect((json["user"] as? [String: Any])?["uid"] as? Int == 1000)
        #expect(throws: RuntimeError.containerExists("ondisk")) {
            try fixture.runtime.create(fixture.spec("ondisk", ["true"]))
        }
        try fixture.runtime.delete("ondisk")
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}

/// The state letter of /proc/PID/stat (R, S, Z, ...), or nil when gone.
func processState(_ pid: Int32) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let end = stat.range(of: ") ", options: .backwards) else { return nil }
    return String(stat[end.upperBound...].prefix(1))
}

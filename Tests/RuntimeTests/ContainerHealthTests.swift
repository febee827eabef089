import Foundation
import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Container health checks", .serialized, .enabled(if: TestImage.available, "needs root and busybox-static"),
       .timeLimit(.minutes(5)))
struct ContainerHealthTests {
    func health(_ fixture: RuntimeFixture, _ id: String) -> HealthState? {
        fixture.runtime.container(id)?.state.health
    }

    @Test func aPassingCommandMakesTheContainerHealthy() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let check = HealthCheck(command: ["sh", "-c", "echo fine; hostname"], intervalMilliseconds: 100,
                                timeoutMilliseconds: 10_000, retries: 2)
        let container = try fixture.runtime.run(fixture.spec("healthy", ["sleep", "1000"]) {
            $0.healthCheck = check
            $0.hostname = "probed"
        })
        #expect(container.state.health != nil, "a container with a health check has a health state from its start")
        #expect(fixture.eventually { health(fixture, "healthy")?.status == .healthy })
        let state = try #require(health(fixture, "healthy"))
        #expect(state.failingStreak == 0)
        let last = try #require(state.log.last)
        #expect(last.exitCode == 0)
        #expect(last.output == "fine\nprobed\n", "the probe runs inside the container")
        #expect(last.end >= last.start)
        // More probes follow; the log keeps the last five.
        #expect(fixture.eventually { (health(fixture, "healthy")?.log.count ?? 0) == HealthState.maxLogEntries })
        usleep(300_000)
        #expect((health(fixture, "healthy")?.log.count ?? 0) == HealthState.maxLogEntries)
        // Recorded in state.json for a restarted daemon and `inspect`.
        let onDisk = try String(contentsOfFile: container.directory + "/state.json", encoding: .utf8)
        #expect(onDisk.contains("\"healthy\""))
        try fixture.runtime.stop("healthy", gracePeriod: .zero)
    }

    @Test func failuresBeyondRetriesMakeItUnhealthyAndASuccessRecovers() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let marker = "/tmp/ready-\(UUID().uuidString.prefix(8))"
        let check = HealthCheck(command: ["sh", "-c", "test -e \(marker) || { echo not ready >&2; exit 3; }"],
                                intervalMilliseconds: 100, timeoutMilliseconds: 10_000, retries: 3)
        try fixture.runtime.run(fixture.spec("sick", ["sleep", "1000"]) { $0.healthCheck = check })
        #expect(fixture.eventually { health(fixture, "sick")?.status == .unhealthy })
        let sick = try #require(health(fixture, "sick"))
        #expect(sick.failingStreak >= 3)
        #expect(sick.log.allSatisfy { $0.exitCode == 3 && $0.output == "not ready\n" }, "\(sick.log)")
        // Not unhealthy before the third failure: the first two left it starting.
        #expect(sick.log.count >= 3)

        let touch = try fixture.runtime.exec("sick", ExecSpec(command: ["touch", marker]))
        defer { _ = try? fixture.runtime.exec("sick", ExecSpec(command: ["rm", "-f", marker])) }
        #expect(touch.status == .exited(0))
        #expect(fixture.eventually { health(fixture, "sick")?.status == .healthy })
        #expect(health(fixture, "sick")?.failingStreak == 0)
        _ = try fixture.runtime.exec("sick", ExecSpec(command: ["rm", "-f", marker]))
        try fixture.runtime.stop("sick", gracePeriod: .zero)
    }

    @Test func aProbeOverItsTimeoutIsKilledAndCountsAsAFailure() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let check = HealthCheck(command: ["sleep", "30"], intervalMilliseconds: 100, timeoutMilliseconds: 200, retries: 1)
        try fixture.runtime.run(fixture.spec("slow", ["sleep", "1000"]) { $0.healthCheck = check })
        #expect(fixture.eventually { health(fixture, "slow")?.status == .unhealthy })
        let last = try #require(health(fixture, "slow")?.log.last)
        #expect(last.exitCode == -1)
        #expect(last.output.contains("exceeded timeout"), "\(last.output)")
        #expect(last.end.timeIntervalSince(last.start) < 20, "the probe was killed, not waited for")
        // The killed probe is gone from the container.
        let ps = try fixture.runtime.exec("slow", ExecSpec(command: ["ps", "-o", "args"]))
        #expect(!ps.output.contains("sleep 30"), "\(ps.output)")
        try fixture.runtime.stop("slow", gracePeriod: .zero)
    }

    @Test func failuresInTheStartPeriodDoNotCount() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let check = HealthCheck(command: ["false"], intervalMilliseconds: 100, timeoutMilliseconds: 10_000, retries: 1,
                                startPeriodMilliseconds: 600_000)
        try fixture.runtime.run(fixture.spec("warming", ["sleep", "1000"]) { $0.healthCheck = check })
        #expect(fixture.eventually { (health(fixture, "warming")?.log.count ?? 0) >= 3 })
        let state = try #require(health(fixture, "warming"))
        #expect(state.status == .starting)
        #expect(state.failingStreak == 0)
        #expect(state.log.allSatisfy { $0.exitCode == 1 })
        try fixture.runtime.stop("warming", gracePeriod: .zero)
    }

    @Test func aBadHealthCheckIsRefusedAtCreate() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        #expect(throws: RuntimeError.invalidSpec("health check retries must be at least 1")) {
            try fixture.runtime.create(fixture.spec("bad", ["true"]) {
                $0.healthCheck = HealthCheck(command: ["true"], retries: 0)
            })
        }
        #expect(fixture.runtime.container("bad") == nil, "nothing recorded")
    }

    /// The verdict rules on their own (Docker's): start period, retries, recovery.
    @Test func healthStateFollowsDockersRules() {
        func result(_ code: Int32) -> HealthProbeResult {
            HealthProbeResult(start: Date(), end: Date(), exitCode: code, output: String(repeating: "x", count: 5000))
        }
        var state = HealthState()
        state.record(result(1), retries: 2, inStartPeriod: true)
        #expect(state.status == .starting && state.failingStreak == 0)
        state.record(result(1), retries: 2, inStartPeriod: false)
        #expect(state.status == .starting && state.failingStreak == 1)
        state.record(result(1), retries: 2, inStartPeriod: false)
        #expect(state.status == .unhealthy && state.failingStreak == 2)
        state.record(result(0), retries: 2, inStartPeriod: false)
        #expect(state.status == .healthy && state.failingStreak == 0)
        state.record(result(1), retries: 2, inStartPeriod: true)
        #expect(state.status == .healthy && state.failingStreak == 1, "once healthy, the start period no longer spares failures (Docker)")
        for _ in 0..<10 { state.record(result(0), retries: 2, inStartPeriod: false) }
        #expect(state.log.count == HealthState.maxLogEntries)
        #expect(state.log[0].output.utf8.count == HealthProbeResult.maxOutputBytes)
    }
}

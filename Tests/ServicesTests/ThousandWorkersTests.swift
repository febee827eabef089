import Agent
import ClusterState
@testable import Daemon
import Foundation
import Net
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("One manager serves 1,000 workers", .serialized, .enabled(if: getuid() == 0, "needs root (the daemon's data directory)"))
struct ThousandWorkersTests {
    static let workerCount = 1000
    static let replicas = 3000
    static let killed = 50
    /// Shorter than the 5 s default so the test fits CI; at 1,000 workers
    /// it is also 2.5 × the default's heartbeat load on the manager.
    static let heartbeatPeriod: Duration = .seconds(2)

    /// 1,000 simulated workers in this process, each joined through the
    /// real join path (its own key, a certificate from the cluster CA) and
    /// holding the agent's own session over its own mutual-TLS connection
    /// to one manager: all register and become ready, a 3,000-replica
    /// service runs across them, heartbeats keep every node up past a full
    /// deadline, and 50 killed workers are marked down and their tasks
    /// rescheduled onto the others.
    @Test("1,000 workers over mutual TLS: ready, 3,000 tasks running, heartbeats, 50 killed and rescheduled")
    func thousandWorkers() async throws {
        _ = try ResourceLimits.raiseOpenFileLimit(to: 16_384)
        let node = try await DevNode(runsAgent: false, heartbeatPeriod: Self.heartbeatPeriod)
        var fleet: SimulatedWorkerFleet?
        do {
            let manager = try #require(node.daemon.manager)
            let dispatcher = try #require(manager.dispatcher)
            let started = ContinuousClock.now
            let workers = try await SimulatedWorkerFleet.join(count: Self.workerCount, manager: manager.advertiseAddress, token: manager.tokens.token(for: .worker))
            fleet = workers
            let joined = ContinuousClock.now - started
            workers.startAll()
            let ids = Set(workers.all.map(\.nodeID))
            try await eventually("all \(Self.workerCount) sessions open and every node ready", timeout: .seconds(60)) {
                let ready = try await manager.read(stale: true) { state in state.nodes.filter { ids.contains($0.id) && $0.status.state == .ready }.count }
                return ready == Self.workerCount && dispatcher.sessionCount == Self.workerCount ? nil : "\(ready) ready, \(dispatcher.sessionCount) sessions"
            }
            let ready = ContinuousClock.now - started

            var spec = webSpec("wide", replicas: Self.replicas)
            spec.task.placement.constraints = ["node.role==worker"]
            let placing = ContinuousClock.now
            let service = try await node.create(spec)
            try await eventually("\(Self.replicas) tasks running, reported by the workers", timeout: .seconds(60)) {
                let inStore = try await manager.read(stale: true) { state in
                    state.tasks.filter { $0.serviceID == service.id && $0.status.state == .running && $0.desiredState == .running }.count
                }
                let reported = workers.all.reduce(0) { $0 + $1.runningTaskIDs.count }
                return inStore == Self.replicas && reported == Self.replicas ? nil : "\(inStore) running in the store, \(reported) on the workers"
            }
            let placed = ContinuousClock.now - placing
            // Least-loaded placement on equal nodes: three each.
            let perWorker = workers.all.map(\.runningTaskIDs.count)
            #expect(perWorker.min() == Self.replicas / Self.workerCount && perWorker.max() == Self.replicas / Self.workerCount,
                     "tasks per worker range \(perWorker.min() ?? 0)...\(perWorker.max() ?? 0)")

            // Past a full deadline (3 periods) of heartbeats, nobody is down.
            try await Task.sleep(for: Self.heartbeatPeriod * 4)
            let notReady = try await manager.read(stale: true) { state in ids.filter { state.node($0)?.status.state != .ready }.count }
            #expect(notReady == 0, "\(notReady) nodes left ready while their workers heartbeat")
            #expect(dispatcher.sessionCount == Self.workerCount)
            #expect(workers.all.allSatisfy { $0.sessionCount == 1 }, "a session was reopened: \(workers.all.filter { $0.sessionCount != 1 }.count) workers")

            // Kill 50: down after the deadline, their tasks replaced on live nodes.
            let victims = Array(workers.all.prefix(Self.killed))
            let victimIDs = Set(victims.map(\.nodeID))
            let killing = ContinuousClock.now
            await withTaskGroup(of: Void.self) { group in
                for victim in victims { group.addTask { await victim.stop() } }
            }
            try await eventually("the \(Self.killed) killed workers marked down, their tasks running elsewhere", timeout: .seconds(60)) {
                try await manager.read(stale: true) { state in
                    let down = state.nodes.filter { victimIDs.contains($0.id) && $0.status.state == .down }.count
                    let live = state.tasks.filter { $0.serviceID == service.id && $0.desiredState == .running && $0.status.state == .running }
                    let onVictims = live.filter { victimIDs.contains($0.nodeID ?? "") }.count
                    return down == Self.killed && live.count == Self.replicas && onVictims == 0
                        ? nil : "\(down) down, \(live.count) running, \(onVictims) on killed nodes"
                }
            }
            let rescheduled = ContinuousClock.now - killing
            let survivorsReady = try await manager.read(stale: true) { state in
                ids.subtracting(victimIDs).filter { state.node($0)?.status.state == .ready }.count
            }
            #expect(survivorsReady == Self.workerCount - Self.killed)
            let message = try await manager.read(stale: true) { state in victims.first.flatMap { state.node($0.nodeID)?.status.message } ?? "" }
            #expect(message.contains("heartbeat deadline"), "why the node is down: \(message)")
            print("""
                dispatcher-fleet: \(Self.workerCount) workers joined in \(joined), all ready after \(ready); \
                \(Self.replicas) tasks running in \(placed); \(Self.killed) killed → down and rescheduled in \(rescheduled) \
                (deadline \(Self.heartbeatPeriod * 3)); test process RSS \(residentMebibytes()) MiB
                """)
        } catch {
            await fleet?.stopAll()
            await node.close()
            throw error
        }
        await fleet?.stopAll()
        await node.close()
    }

    /// Polls `check` (nil: done; otherwise what is still missing) until `timeout`.
    private func eventually(_ what: String, timeout: Duration, _ check: () async throws -> String?) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            guard let missing = try await check() else { return }
            last = missing
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("timed out after \(timeout) waiting for \(what): \(last)")
        throw CancellationError()
    }

    private func residentMebibytes() -> Int {
        let text = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        let pages = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (pages * Int(sysconf(Int32(_SC_PAGESIZE)))) >> 20
    }
}

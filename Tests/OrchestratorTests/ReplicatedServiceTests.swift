import struct Raft.SeededGenerator
import ClusterState
import Orchestrator
import Testing

@Suite("Orchestrator: replicated services")
struct ReplicatedServiceTests {
    @Test("scale 3 → 10 → 0: slots are created, and scaling down stops the highest (newest) first")
    func scale() {
        var harness = Harness()
        for node: ObjectID in ["n1", "n2", "n3"] { harness.addNode(node) }
        harness.createService("web", mode: .replicated(replicas: 3))
        let first = harness.orchestrator.reconcile(harness.state, now: harness.time, idGenerator: &harness.ids)
        guard case .createTasks(let created)? = first.commands.first, first.commands.count == 1 else {
            Issue.record("expected one createTasks, got \(first.commands)")
            return
        }
        #expect(created.map(\.slot) == [1, 2, 3])
        harness.settle()
        #expect(harness.runningSlots("web") == [1, 2, 3])

        harness.updateService("web") { $0.mode = .replicated(replicas: 10) }
        harness.settle()
        #expect(harness.runningSlots("web") == Array(1...10))
        #expect(Set(harness.tasks(of: "web").map(\.id)).count == 10, "no task was replaced to scale up")

        harness.updateService("web") { $0.mode = .replicated(replicas: 4) }
        let down = harness.reconcile()
        let stopped = down.commands.compactMap { command -> Int? in
            guard case .setTaskDesiredState(let id, _, .shutdown) = command else { return nil }
            return harness.state.task(id)?.slot
        }
        #expect(stopped == Array(5...10))
        harness.settle()
        #expect(harness.runningSlots("web") == [1, 2, 3, 4])

        harness.updateService("web") { $0.mode = .replicated(replicas: 0) }
        harness.settle()
        #expect(harness.runningSlots("web").isEmpty)
        #expect(harness.tasks(of: "web").allSatisfy { $0.status.state == .shutdown })
        #expect(harness.orchestrator.reconcile(harness.state, now: harness.time, idGenerator: &harness.ids).commands.isEmpty)
        #expect(harness.violations.isEmpty)
    }

    @Test("scaling down pending tasks removes them in one step with a version check")
    func scaleDownPending() {
        var harness = Harness()
        harness.createService("web", mode: .replicated(replicas: 2))
        harness.reconcile()
        let pending = harness.tasks(of: "web")
        harness.updateService("web") { $0.mode = .replicated(replicas: 1) }
        let reconciliation = harness.reconcile()
        let slot2 = pending.first { $0.slot == 2 }!
        #expect(reconciliation.commands == [.batch([.setTaskDesiredState(id: slot2.id, expectedVersion: slot2.meta.version, desiredState: .shutdown),
                                                     .removeTasks(ids: [slot2.id])])])
        #expect(harness.tasks(of: "web").map(\.slot) == [1])
    }

    @Test("a failed task's slot is replaced only once the restart delay has passed")
    func restartDelay() throws {
        var harness = Harness()
        harness.addNode("n1")
        harness.createService("web", mode: .replicated(replicas: 1)) { $0.restartPolicy = .init(condition: .onFailure, delayMilliseconds: 1_000) }
        harness.settle()
        let first = try #require(harness.latest("web", slot: 1))
        harness.time = 5_000
        harness.end(first.id, .failed)
        harness.time = 5_500
        let early = harness.reconcile()
        #expect(early.commands.isEmpty)
        #expect(early.nextWakeUpMilliseconds == 6_000)
        harness.time = 6_000
        let due = harness.reconcile()
        #expect(due.commands.count == 1)
        #expect(harness.latest("web", slot: 1)?.id != first.id)
        // Replaced in one step: `service ps` shows the failed task as desired Shutdown, as Docker does.
        #expect(harness.state.task(first.id)?.desiredState == .shutdown)
        harness.settle()
        #expect(harness.runningSlots("web") == [1])
    }

    @Test("max attempts: a slot is restarted that many times, then given up; the window forgets old restarts")
    func maxAttempts() {
        var harness = Harness()
        harness.addNode("n1")
        harness.createService("web", mode: .replicated(replicas: 1)) {
            $0.restartPolicy = .init(condition: .any, delayMilliseconds: 0, maxAttempts: 2, windowMilliseconds: 10_000)
        }
        harness.settle()
        var histories: [[Int64]] = []
        for time: Int64 in [2_000, 3_000, 4_000] {
            harness.time = time
            histories.append(harness.latest("web", slot: 1)!.restartHistoryMilliseconds)
            harness.end(harness.latest("web", slot: 1)!.id, .failed)
            harness.settle()
        }
        #expect(histories == [[], [2_000], [2_000, 3_000]])
        #expect(harness.runningSlots("web").isEmpty, "two restarts, then given up")
        #expect(harness.tasks(of: "web").count == 3)
        #expect(harness.reconcile().nextWakeUpMilliseconds == nil)

        // A new failure long after the window counts no earlier restart.
        var fresh = Harness()
        fresh.addNode("n1")
        fresh.createService("web", mode: .replicated(replicas: 1)) {
            $0.restartPolicy = .init(condition: .any, delayMilliseconds: 0, maxAttempts: 1, windowMilliseconds: 10_000)
        }
        fresh.settle()
        fresh.time = 2_000
        fresh.end(fresh.latest("web", slot: 1)!.id, .failed)
        fresh.settle()
        fresh.time = 30_000
        fresh.end(fresh.latest("web", slot: 1)!.id, .failed)
        fresh.settle()
        #expect(fresh.runningSlots("web") == [1])
        #expect(fresh.latest("web", slot: 1)?.restartHistoryMilliseconds == [30_000])
    }

    @Test("restart conditions: none never restarts, on-failure skips completed tasks, any restarts both",
          arguments: [(TaskTemplate.RestartPolicy.Condition.none, ServiceTask.State.failed, false),
                      (.onFailure, .failed, true), (.onFailure, .complete, false), (.onFailure, .rejected, true),
                      (.any, .complete, true), (.any, .failed, true)])
    func restartConditions(condition: TaskTemplate.RestartPolicy.Condition, end: ServiceTask.State, restarts: Bool) {
        var harness = Harness()
        harness.addNode("n1")
        harness.createService("web", mode: .replicated(replicas: 1)) { $0.restartPolicy = .init(condition: condition, delayMilliseconds: 0) }
        harness.settle()
        harness.end(harness.latest("web", slot: 1)!.id, end)
        harness.settle()
        #expect(harness.runningSlots("web") == (restarts ? [1] : []))
    }

    @Test("node down: its tasks are stopped and replaced elsewhere in one atomic command; they come back as stopped")
    func nodeDown() {
        var harness = Harness()
        for node: ObjectID in ["n1", "n2", "n3"] { harness.addNode(node) }
        harness.createService("web", mode: .replicated(replicas: 6))
        harness.settle()
        let onN1 = harness.tasks(of: "web").filter { $0.nodeID == "n1" }
        #expect(onN1.count == 2)
        harness.setNode("n1", state: .down)
        let reconciliation = harness.reconcile()
        #expect(reconciliation.commands.count == 2)
        #expect(reconciliation.commands.allSatisfy { if case .batch = $0 { return true } else { return false } })
        harness.settle()
        #expect(harness.runningSlots("web") == Array(1...6))
        #expect(harness.tasks(of: "web").filter { $0.status.state == .running && $0.desiredState == .running }.allSatisfy { $0.nodeID != "n1" })
        #expect(onN1.allSatisfy { harness.state.task($0.id)?.desiredState == .shutdown })
        // The node comes back: its agent stops the old tasks; nothing else changes.
        harness.setNode("n1", state: .ready)
        harness.settle()
        #expect(onN1.allSatisfy { harness.state.task($0.id)?.status.state == .shutdown })
        #expect(harness.runningSlots("web") == Array(1...6))
        #expect(ServiceInvariants.checkConverged(harness.state).isEmpty)
        #expect(harness.violations.isEmpty)
    }

    @Test("drain: tasks are stopped first, then replaced on other nodes")
    func drain() {
        var harness = Harness()
        harness.addNode("n1")
        harness.addNode("n2")
        harness.createService("web", mode: .replicated(replicas: 4))
        harness.settle()
        harness.setNode("n1", availability: .drain)
        harness.reconcile()
        let stopping = harness.tasks(of: "web").filter { $0.nodeID == "n1" && $0.desiredState == .shutdown }
        #expect(stopping.count == 2)
        #expect(harness.tasks(of: "web").filter { $0.status.state == .pending }.isEmpty, "stop-first: no replacement before the stop")
        harness.settle()
        #expect(harness.runningNodes("web") == ["n2", "n2", "n2", "n2"])
        #expect(harness.violations.isEmpty)
    }

    @Test("a node that no longer satisfies the constraints loses its tasks")
    func constraintEnforcement() {
        var harness = Harness()
        harness.addNode("n1", labels: ["zone": "eu"])
        harness.addNode("n2", labels: ["zone": "eu"])
        harness.createService("web", mode: .replicated(replicas: 2)) { $0.placement.constraints = ["node.labels.zone==eu"] }
        harness.settle()
        harness.setNode("n1", labels: ["zone": "us"])
        harness.settle()
        #expect(harness.runningNodes("web") == ["n2", "n2"])
        #expect(ServiceInvariants.placementsSatisfyConstraints(harness.state).isEmpty)
    }

    @Test("force update and spec changes replace every task, stop-first (parallelism 0: all at once)")
    func forceUpdate() {
        var harness = Harness()
        harness.addNode("n1")
        harness.createService("web", mode: .replicated(replicas: 3))
        harness.settle()
        let before = Set(harness.tasks(of: "web").map(\.id))
        harness.updateService("web", force: true) { $0.update.parallelism = 0 }
        let stops = harness.reconcile().commands
        #expect(stops.count == 3 && stops.allSatisfy { if case .setTaskDesiredState(_, _, .shutdown) = $0 { return true } else { return false } })
        harness.settle()
        let after = harness.tasks(of: "web").filter { $0.status.state == .running }
        #expect(after.count == 3 && after.allSatisfy { !before.contains($0.id) && $0.serviceForceUpdate == 1 })

        harness.updateService("web") { $0.task.image = "busybox:2" }
        harness.settle()
        let updated = harness.tasks(of: "web").filter { $0.status.state == .running }
        #expect(updated.map(\.slot).sorted() == [1, 2, 3] && updated.allSatisfy { $0.template.image == "busybox:2" })
        #expect(harness.violations.isEmpty)
        #expect(ServiceInvariants.checkConverged(harness.state).isEmpty)
    }

    @Test("history: a slot keeps its newest 5 terminal tasks")
    func historyRetention() {
        var harness = Harness()
        harness.addNode("n1")
        harness.createService("web", mode: .replicated(replicas: 1))
        harness.settle()
        var ended: [ObjectID] = []
        for step in 1...8 {
            harness.time = Int64(1_000 + step * 1_000)
            let current = harness.latest("web", slot: 1)!
            ended.append(current.id)
            harness.end(current.id, .failed)
            harness.settle()
        }
        let terminal = harness.tasks(of: "web").filter { $0.status.state.isTerminal }.map(\.id)
        #expect(Set(terminal) == Set(ended.suffix(5)))
        #expect(harness.runningSlots("web") == [1])
    }

    @Test("a removed service's tasks are stopped, then removed")
    func serviceRemoval() {
        var harness = Harness()
        harness.addNode("n1")
        harness.createService("web", mode: .replicated(replicas: 2))
        harness.settle()
        harness.createService("api", mode: .replicated(replicas: 1)) { $0.placement.constraints = ["node.labels.gpu==yes"] }
        harness.settle()
        #expect(harness.tasks(of: "api").map(\.status.state) == [.pending])
        harness.mustApply(.removeService(id: "web", expectedVersion: nil))
        harness.mustApply(.removeService(id: "api", expectedVersion: nil))
        #expect(harness.tasks(of: "web").allSatisfy { $0.desiredState == .shutdown })
        let first = harness.reconcile()
        #expect(first.commands.count == 1, "the never-assigned api task goes at once")
        #expect(harness.tasks(of: "api").isEmpty)
        harness.settle()
        #expect(harness.state.tasks.isEmpty)
    }

    @Test("determinism: the same state, time and seed give the same commands")
    func determinism() {
        var harness = Harness()
        for node: ObjectID in ["n1", "n2"] { harness.addNode(node) }
        harness.createService("web", mode: .replicated(replicas: 5))
        harness.createService("agent", mode: .global)
        var first = SeededGenerator(seed: 7)
        var second = SeededGenerator(seed: 7)
        let a = harness.orchestrator.reconcile(harness.state, now: 1, idGenerator: &first)
        let b = harness.orchestrator.reconcile(harness.state, now: 1, idGenerator: &second)
        #expect(a == b)
        #expect(a.commands.count == 2)
    }
}

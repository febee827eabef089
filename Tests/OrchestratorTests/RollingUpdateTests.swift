import ClusterState
import Orchestrator
import Testing

/// Rolling updates, one test per parameter of the update config, driven
/// step by step with the harness's clock: the orchestrator reads no time
/// but `now`, so a delay or a monitor window is a number compared here.
@Suite("Orchestrator: rolling updates")
struct RollingUpdateTests {
    /// `replicas` tasks of `busybox:1` running on three nodes.
    static func running(replicas: Int, configure: (inout UpdateConfig) -> Void = { _ in }) -> Harness {
        var harness = Harness()
        for node: ObjectID in ["n1", "n2", "n3"] { harness.addNode(node) }
        harness.createService("web", mode: .replicated(replicas: replicas)) { $0.image = "busybox:1" }
        harness.updateService("web") { configure(&$0.update) }
        harness.settle()
        return harness
    }

    /// One round: orchestrator, scheduler, agents (tasks of `failing` fail as they start).
    static func step(_ harness: inout Harness, failing image: String? = nil) {
        harness.reconcile()
        harness.schedule()
        harness.runAgents { $0.template.image == image }
    }

    /// Slots whose task is not running the way it should: being replaced.
    static func slotsWithoutRunningTask(_ harness: Harness) -> Int {
        let replicas: Int
        if case .replicated(let count) = harness.state.service("web")!.spec.mode { replicas = count } else { replicas = 0 }
        let running = Set(harness.tasks(of: "web").filter { $0.status.state == .running && $0.desiredState == .running }.map(\.slot))
        return (1...replicas).filter { !running.contains($0) }.count
    }

    static func images(_ harness: Harness) -> [String] {
        harness.tasks(of: "web").filter { $0.status.state == .running && $0.desiredState == .running }.sorted { $0.slot < $1.slot }.map(\.template.image)
    }

    static func updateStatus(_ harness: Harness) -> UpdateStatus? { harness.state.service("web")?.updateStatus }

    @Test("parallelism 2: never more than 2 slots without a running task, lowest slots first, all updated in the end")
    func parallelism() {
        var harness = Self.running(replicas: 6) { $0.parallelism = 2 }
        harness.updateService("web") { $0.task.image = "busybox:2" }
        #expect(Self.updateStatus(harness)?.state == .updating)
        let first = harness.reconcile()
        let stopped = first.commands.compactMap { command -> Int? in
            guard case .setTaskDesiredState(let id, _, .shutdown) = command else { return nil }
            return harness.state.task(id)?.slot
        }
        #expect(stopped == [1, 2])
        var widest = 0
        for _ in 0..<40 {
            Self.step(&harness)
            widest = max(widest, Self.slotsWithoutRunningTask(harness))
        }
        #expect(widest == 2)
        #expect(Self.images(harness) == Array(repeating: "busybox:2", count: 6))
        #expect(harness.violations.isEmpty)
    }

    @Test("parallelism 0 replaces every slot at once")
    func parallelismZero() {
        var harness = Self.running(replicas: 4) { $0.parallelism = 0 }
        harness.updateService("web") { $0.task.image = "busybox:2" }
        let stops = harness.reconcile().commands.filter { if case .setTaskDesiredState(_, _, .shutdown) = $0 { return true } else { return false } }
        #expect(stops.count == 4)
    }

    @Test("delay: the next slot starts only once the replaced one has run for the delay, and the pass says when to wake")
    func delay() {
        var harness = Self.running(replicas: 3) { $0.delayMilliseconds = 10_000 }
        harness.updateService("web") { $0.task.image = "busybox:2" }
        for _ in 0..<4 { Self.step(&harness) }
        #expect(Self.images(harness) == ["busybox:2", "busybox:1", "busybox:1"])
        let newTask = harness.latest("web", slot: 1)!
        #expect(newTask.runningSinceMilliseconds == harness.time)
        harness.time += 5_000
        let early = harness.reconcile()
        #expect(early.commands.isEmpty)
        #expect(early.nextWakeUpMilliseconds == newTask.runningSinceMilliseconds! + 10_000)
        harness.time = newTask.runningSinceMilliseconds! + 10_000
        let due = harness.reconcile()
        #expect(due.commands.contains { if case .setTaskDesiredState(let id, _, .shutdown) = $0 { return harness.state.task(id)?.slot == 2 } else { return false } })
    }

    @Test("start-first: the new task starts beside the old one, which stops once the new one runs")
    func startFirst() throws {
        var harness = Self.running(replicas: 2) { $0.order = .startFirst }
        let old = try #require(harness.latest("web", slot: 1))
        harness.updateService("web") { $0.task.image = "busybox:2" }
        harness.reconcile()
        let slot1 = harness.tasks(of: "web").filter { $0.slot == 1 }
        #expect(slot1.count == 2 && slot1.allSatisfy { $0.desiredState == .running }, "old and new both desired running")
        #expect(harness.state.task(old.id)?.status.state == .running)
        harness.schedule()
        harness.runAgents()
        #expect(harness.state.task(old.id)?.desiredState == .running, "the old one runs until the new one does")
        harness.reconcile()
        #expect(harness.state.task(old.id)?.desiredState == .shutdown)
        for _ in 0..<10 { Self.step(&harness) }
        #expect(Self.images(harness) == ["busybox:2", "busybox:2"])
        #expect(Self.slotsWithoutRunningTask(harness) == 0)
        #expect(harness.violations.isEmpty, "start-first's overlap is allowed, nothing else: \(harness.violations)")
    }

    @Test("stop-first (the default): the old task stops before the new one is created")
    func stopFirst() throws {
        var harness = Self.running(replicas: 1)
        let old = try #require(harness.latest("web", slot: 1))
        harness.updateService("web") { $0.task.image = "busybox:2" }
        harness.reconcile()
        #expect(harness.tasks(of: "web").count == 1 && harness.state.task(old.id)?.desiredState == .shutdown)
        harness.runAgents()
        harness.reconcile()
        #expect(harness.tasks(of: "web").count == 2)
    }

    @Test("failure action pause: a new task that fails pauses the update; the rest keep the old image; update again resumes")
    func pauseOnFailure() throws {
        var harness = Self.running(replicas: 3)
        harness.updateService("web") { $0.task.image = "bad:1" }
        for _ in 0..<6 { Self.step(&harness, failing: "bad:1") }
        let status = try #require(Self.updateStatus(harness))
        #expect(status.state == .paused)
        #expect(status.message.hasPrefix("update paused due to failure or early termination of task"))
        #expect(Self.images(harness) == ["busybox:1", "busybox:1"], "slots 2 and 3 keep running the old image")
        harness.updateService("web") { $0.task.image = "busybox:2" }
        #expect(Self.updateStatus(harness)?.state == .updating)
        harness.settle()
        #expect(Self.images(harness) == ["busybox:2", "busybox:2", "busybox:2"])
    }

    @Test("start-first with pause: the old task keeps its slot, and the failed new one is desired shutdown (not restarted)")
    func startFirstPaused() throws {
        var harness = Self.running(replicas: 2) { $0.order = .startFirst }
        let old = try #require(harness.latest("web", slot: 1))
        harness.updateService("web") { $0.task.image = "bad:1" }
        for _ in 0..<6 { Self.step(&harness, failing: "bad:1") }
        #expect(Self.updateStatus(harness)?.state == .paused)
        #expect(harness.state.task(old.id)?.desiredState == .running && harness.state.task(old.id)?.status.state == .running)
        let failed = harness.tasks(of: "web").filter { $0.template.image == "bad:1" }
        #expect(failed.count == 1 && failed.allSatisfy { $0.status.state == .failed && $0.desiredState == .shutdown })
        #expect(Self.images(harness) == ["busybox:1", "busybox:1"])
        #expect(harness.violations.isEmpty)
    }

    @Test("failure action continue: failures do not stop the rollout")
    func continueOnFailure() {
        var harness = Self.running(replicas: 3) { $0.failureAction = .continue }
        harness.updateService("web") { $0.task.image = "bad:1" }
        for _ in 0..<30 { Self.step(&harness, failing: "bad:1") }
        // Every slot was tried: the rollout is done with (the restart policy keeps at the failing ones).
        #expect(Self.updateStatus(harness)?.state == .completed)
        #expect(harness.tasks(of: "web").filter { $0.template.image == "busybox:1" && !$0.status.state.isTerminal }.isEmpty,
                "every old task was replaced")
    }

    @Test("failure action rollback: the previous spec comes back with the rollback config, then the rollback completes")
    func rollbackOnFailure() throws {
        var harness = Self.running(replicas: 3) { $0.failureAction = .rollback }
        harness.updateService("web") { $0.task.image = "bad:1" }
        for _ in 0..<4 { Self.step(&harness, failing: "bad:1") }
        var status = try #require(Self.updateStatus(harness))
        #expect(status.state == .rollbackStarted)
        #expect(status.message.hasPrefix("update rolled back due to failure or early termination of task"))
        #expect(harness.state.service("web")?.spec.task.image == "busybox:1")
        harness.settle()
        #expect(Self.images(harness) == ["busybox:1", "busybox:1", "busybox:1"])
        harness.time += UpdateConfig.defaultMonitorMilliseconds
        harness.reconcile()
        status = try #require(Self.updateStatus(harness))
        #expect(status.state == .rollbackCompleted && status.completedAtMilliseconds == harness.time)
    }

    @Test("monitor: a failure after the window is not the update's; the update completes once the last new task has run for it")
    func monitor() throws {
        var harness = Self.running(replicas: 1) { $0.monitorMilliseconds = 5_000 }
        harness.updateService("web") { $0.task.image = "busybox:2" }
        harness.settle()
        let updated = try #require(harness.latest("web", slot: 1))
        #expect(updated.template.image == "busybox:2" && updated.status.state == .running)
        harness.time += 4_000
        let early = harness.reconcile()
        #expect(Self.updateStatus(harness)?.state == .updating)
        #expect(early.nextWakeUpMilliseconds == updated.runningSinceMilliseconds! + 5_000)
        harness.time += 2_000
        harness.end(updated.id, .failed)
        harness.reconcile()
        #expect(Self.updateStatus(harness)?.state == .completed, "failed 6 s after running: outside the 5 s window")

        // The same failure inside the window pauses the next update.
        harness.updateService("web") { $0.task.image = "busybox:3" }
        harness.settle()
        let third = try #require(harness.tasks(of: "web").last { $0.template.image == "busybox:3" && $0.status.state == .running })
        harness.time += 2_000
        harness.end(third.id, .failed)
        harness.reconcile()
        #expect(Self.updateStatus(harness)?.state == .paused)
    }

    @Test("max failure ratio: failures up to the ratio of the slots are tolerated, one more triggers the action")
    func maxFailureRatio() throws {
        // Slots 1 and 2 fail once each on the new image: 2 of 4 slots.
        func run(ratio: Double) -> UpdateStatus.State? {
            var harness = Self.running(replicas: 4) { $0.maxFailureRatio = ratio }
            harness.updateService("web") { $0.task.image = "busybox:2" }
            var failedSlots: Set<Int> = []
            for _ in 0..<40 {
                harness.reconcile()
                harness.schedule()
                harness.runAgents { task in
                    guard task.template.image == "busybox:2", task.slot <= 2, !failedSlots.contains(task.slot) else { return false }
                    failedSlots.insert(task.slot)
                    return true
                }
            }
            harness.time += UpdateConfig.defaultMonitorMilliseconds
            harness.reconcile()
            return harness.state.service("web")?.updateStatus?.state
        }
        #expect(run(ratio: 0.5) == .completed, "2 failures of 4 slots is not more than 0.5")
        #expect(run(ratio: 0.25) == .paused, "2 failures of 4 slots is more than 0.25")
    }

    @Test("service rollback: the previous spec rolls out with the rollback config (parallelism 0: all at once)")
    func manualRollback() throws {
        var harness = Self.running(replicas: 3)
        // The spec rolled back to brings its rollback config (Docker's rule): set before the update.
        harness.updateService("web") { $0.rollback.parallelism = 0 }
        harness.updateService("web") { $0.task.image = "busybox:2" }
        harness.settle()
        #expect(Self.images(harness) == ["busybox:2", "busybox:2", "busybox:2"])
        let service = try #require(harness.state.service("web"))
        harness.mustApply(.rollbackService(id: "web", expectedVersion: service.meta.version))
        let status = try #require(Self.updateStatus(harness))
        #expect(status.state == .rollbackStarted && status.message == "manually requested rollback")
        let stops = harness.reconcile().commands.filter { if case .setTaskDesiredState(_, _, .shutdown) = $0 { return true } else { return false } }
        #expect(stops.count == 3)
        harness.settle()
        #expect(Self.images(harness) == ["busybox:1", "busybox:1", "busybox:1"])
        #expect(harness.violations.isEmpty)
    }

    @Test("a global service rolls node by node")
    func globalRolls() {
        var harness = Harness()
        for node: ObjectID in ["n1", "n2", "n3"] { harness.addNode(node) }
        harness.createService("agent", mode: .global) { $0.image = "busybox:1" }
        harness.settle()
        harness.updateService("agent") { $0.task.image = "busybox:2" }
        harness.reconcile()
        let stopped = harness.tasks(of: "agent").filter { $0.desiredState == .shutdown }.compactMap(\.nodeID)
        #expect(stopped == ["n1"])
        harness.settle()
        #expect(harness.tasks(of: "agent").filter { $0.status.state == .running }.map(\.template.image) == ["busybox:2", "busybox:2", "busybox:2"])
    }

    @Test("bad update configs are refused, naming the field")
    func badConfig() {
        var harness = Self.running(replicas: 1)
        let service = harness.state.service("web")!
        var spec = service.spec
        spec.update.maxFailureRatio = 1.5
        #expect(throws: ClusterStateError.self) {
            try harness.state.validate(.updateService(id: "web", expectedVersion: service.meta.version, spec: spec, force: false),
                                       context: ApplyContext(index: harness.index + 1, timeMilliseconds: harness.time))
        }
        spec.update.maxFailureRatio = 0
        spec.update.parallelism = -1
        do {
            try harness.state.validate(.updateService(id: "web", expectedVersion: service.meta.version, spec: spec, force: false),
                                       context: ApplyContext(index: harness.index + 1, timeMilliseconds: harness.time))
            Issue.record("a negative parallelism was accepted")
        } catch {
            #expect("\(error)".contains("parallelism"))
        }
    }
}

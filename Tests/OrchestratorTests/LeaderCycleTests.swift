import ClusterState
import Testing

@testable import Orchestrator

/// The sans-IO halves of the daemon's LeaderLoop and Dispatcher that
/// `shoal-sim services` drives too.
@Suite struct LeaderCycleTests {
    static func node(_ id: ObjectID, state: Node.State = .ready) -> ClusterCommand {
        .createNode(id: id, spec: Node.Spec(role: .worker), status: Node.Status(state: state), managerStatus: nil)
    }

    @Test func aPassIsDueOnChangesWakeUpsAndTheSafetyTick() {
        var cycle = LeaderCycle()
        #expect(cycle.isPassDue(now: 0))
        var generator = SystemRandomNumberGenerator()
        _ = cycle.pass(ClusterState(), now: 1_000, idGenerator: &generator)
        #expect(!cycle.isPassDue(now: 1_100))
        cycle.markDirty()
        #expect(cycle.isPassDue(now: 1_100))
        _ = cycle.pass(ClusterState(), now: 1_100, idGenerator: &generator)
        #expect(!cycle.isPassDue(now: 1_100 + LeaderCycle.safetyTickMilliseconds - 1))
        #expect(cycle.isPassDue(now: 1_100 + LeaderCycle.safetyTickMilliseconds))
        #expect(cycle.passCount == 2)
        #expect(cycle.fullPassCount == 2, "a caller that feeds no change events gets full passes")
    }

    /// The changed-services tracking must lose nothing: every pass over the
    /// services changed or woken proposes exactly what a full pass over the
    /// same state would (restart delays, rolling updates, a node going down
    /// and back, a removed service, a job).
    @Test func aPassOverChangedServicesProposesWhatAFullPassWould() {
        var harness = Harness()
        for number in 1...4 { harness.addNode(ObjectID("node-\(number)")!) }
        harness.createService("web", mode: .replicated(replicas: 3)) { $0.restartPolicy = .init(condition: .any, delayMilliseconds: 1_500) }
        harness.createService("api", mode: .replicated(replicas: 2))
        harness.createService("agent", mode: .global)
        harness.createService("batch", mode: .replicatedJob(completions: 6, maxConcurrent: 2))
        var cycle = LeaderCycle()
        var partialPasses = 0
        // 60 rounds with faults, then 12 quiet ones to converge.
        for round in 0..<72 {
            harness.time += 400
            switch round < 60 ? round % 12 : -1 {
            case 2, 8:
                if let victim = harness.tasks(of: "web").first(where: { $0.status.state == .running }) { harness.end(victim.id, .failed) }
            case 4:
                harness.updateService("api", force: true)
            case 6:
                harness.setNode("node-2", state: .down)
            case 9:
                harness.setNode("node-2", state: .ready)
            case 10 where round > 30:
                if harness.state.service("batch") != nil { harness.mustApply(.removeService(id: "batch", expectedVersion: nil)) }
            default:
                break
            }
            cycle.applied(harness.takeEvents())
            let fullPassesBefore = cycle.fullPassCount
            var referenceIDs = harness.ids
            let full = Orchestrator().reconcile(harness.state, now: harness.time, idGenerator: &referenceIDs)
            let pass = cycle.pass(harness.state, now: harness.time, idGenerator: &harness.ids)
            #expect(pass.reconcileCommands == full.commands, "round \(round)")
            if cycle.fullPassCount == fullPassesBefore { partialPasses += 1 }
            for command in pass.reconcileCommands + pass.placementCommands { harness.apply(command) }
            harness.runAgents()
            for task in harness.state.tasks where task.serviceID == "batch" && task.status.state == .running { harness.end(task.id, .complete) }
            cycle.applied(harness.takeEvents())
        }
        #expect(partialPasses > 40, "most passes reconcile only what changed")
        #expect(harness.state.service("batch") == nil && harness.tasks(of: "batch").isEmpty, "the removed job's tasks were reaped")
        #expect(harness.runningSlots("web") == [1, 2, 3] && harness.runningSlots("api") == [1, 2])
        #expect(harness.violations.isEmpty)
    }

    @Test func proposalsAreCutIntoBatches() {
        let commands = (0..<(LeaderCycle.maxCommandsPerProposal + 1)).map { ClusterCommand.removeTasks(ids: [ObjectID("t\($0)")!]) }
        let proposals = LeaderCycle.proposals(commands)
        #expect(proposals.count == 2)
        guard case .batch(let first) = proposals[0] else {
            Issue.record("the first proposal is not a batch")
            return
        }
        #expect(first.count == LeaderCycle.maxCommandsPerProposal)
        #expect(proposals[1] == commands.last)
    }

    /// A node that heartbeated to this manager in an earlier term may have
    /// heartbeated to other leaders since: its old deadline must not mark it
    /// down early (the bug `shoal-sim services` found).
    @Test func aNewLeaderGivesEveryTrackedNodeAFullDeadline() {
        var tracker = HeartbeatTracker(periodMilliseconds: 1_000)
        tracker.beat("worker-1", now: 0)
        var state = ClusterState()
        _ = try? state.apply(Self.node("worker-1"), context: ApplyContext(index: 1, timeMilliseconds: 0))
        tracker.leadershipStarted(state, now: 2_500)
        #expect(tracker.expire(now: 3_000).isEmpty)
        #expect(tracker.expire(now: 2_500 + tracker.deadlineMilliseconds) == ["worker-1"])
    }

    @Test func heartbeatsAndDeadlinesMakeNodeCommands() throws {
        var state = ClusterState()
        try state.apply(Self.node("worker-1", state: .down), context: ApplyContext(index: 1, timeMilliseconds: 0))
        try state.apply(Self.node("worker-2"), context: ApplyContext(index: 2, timeMilliseconds: 0))
        #expect(HeartbeatTracker.readyCommand(for: "worker-2", in: state) == nil)
        guard case .updateNodeStatus(let id, let status) = HeartbeatTracker.readyCommand(for: "worker-1", in: state) else {
            Issue.record("no ready command for a node marked down")
            return
        }
        #expect(id == "worker-1" && status.state == .ready)
        let tracker = HeartbeatTracker(periodMilliseconds: 500)
        let commands = tracker.markDownCommands(["worker-1", "worker-2"], in: state)
        #expect(commands.count == 1)
        guard case .updateNodeStatus("worker-2", let down) = commands.first else {
            Issue.record("worker-2 is not marked down: \(commands)")
            return
        }
        #expect(down.state == .down && down.message.contains("1.5 s"))
    }

    @Test func onlyForwardReportsOfTheCallersOwnTasksPass() throws {
        var state = ClusterState()
        var index: UInt64 = 0
        func apply(_ command: ClusterCommand) throws {
            index += 1
            try state.apply(command, context: ApplyContext(index: index, timeMilliseconds: 0))
        }
        try apply(.createService(id: "web", spec: Service.Spec(name: "web", task: TaskTemplate(image: "web:1"))))
        try apply(Self.node("worker-1"))
        try apply(Self.node("worker-2"))
        try apply(.createTasks([.init(id: "t1", serviceID: "web", slot: 1), .init(id: "t2", serviceID: "web", slot: 2)]))
        try apply(.assignTask(id: "t1", expectedVersion: index, nodeID: "worker-1"))
        try apply(.assignTask(id: "t2", expectedVersion: index - 1, nodeID: "worker-2"))
        let running = ServiceTask.Status(state: .running, timestampMilliseconds: 10)
        let commands = DispatchRules.statusCommands(
            [("t1", running), ("t2", running), ("t3", running), ("t1", ServiceTask.Status(state: .pending))], from: "worker-1", in: state)
        #expect(commands == [.updateTaskStatus(id: "t1", status: running)])
        #expect(DispatchRules.concerns(state.task("t1")!))
    }
}

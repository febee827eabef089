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

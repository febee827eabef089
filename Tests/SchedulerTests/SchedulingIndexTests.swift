import ClusterState
import Scheduler
import Testing

/// The leader's kept scheduling index, fed only the change events of the
/// commands applied, as the leader loop feeds it.
@Suite("Scheduling index kept from change events")
struct SchedulingIndexTests {
    /// A cluster whose every command also feeds an index with its events.
    struct Fed {
        var cluster = Cluster()
        var index = SchedulingIndex()

        mutating func apply(_ command: ClusterCommand) {
            cluster.index += 1
            let events = try! cluster.state.apply(command, context: ApplyContext(index: cluster.index, timeMilliseconds: cluster.time))
            for event in events where event.kind == .task { index.update(event.id, to: cluster.state.task(event.id)) }
        }

        /// n1 with 1 GiB, and web-1 pending, reserving 1 GiB.
        static func oneTaskFillingOneNode() -> Fed {
            var fed = Fed()
            fed.cluster.addNode("n1", cpus: 1, memoryGiB: 1)
            fed.cluster.addService("web", replicas: 1) { $0.resources.reservedMemoryBytes = Cluster.gibibyte }
            fed.apply(.createTasks([ClusterCommand.NewTask(id: "web-1", serviceID: "web", slot: 1, nodeID: nil)]))
            return fed
        }

        /// One leader pass: schedule from the index, propose the assignments.
        mutating func pass() -> SchedulingDecision {
            let state = cluster.state
            let decision = index.schedule(with: Scheduler(), nodes: state.nodes, task: { state.task($0) })
            for assignment in decision.assignments { apply(assignment.command) }
            return decision
        }
    }

    @Test("passes from the kept index decide as full passes over the store, through runs, failures, removals and scale-ups")
    func matchesFullPasses() {
        var fed = Fed()
        for index in 1...6 {
            fed.cluster.addNode(ObjectID("n\(index)")!, labels: ["zone": "z\(index % 3)"], cpus: 2, memoryGiB: 2)
        }
        fed.index = SchedulingIndex(tasks: fed.cluster.state.tasks)
        fed.cluster.addService("web", replicas: 10) {
            $0.placement.preferences = ["spread=node.labels.zone"]
            $0.resources.reservedMemoryBytes = Cluster.gibibyte / 2
        }
        fed.apply(.createTasks((1...10).map { ClusterCommand.NewTask(id: ObjectID("web-\($0)")!, serviceID: "web", slot: $0, nodeID: nil) }))
        var full = fed.cluster.state
        var decision = fed.pass()
        #expect(decision == Scheduler().schedule(full))
        #expect(decision.assignments.count == 10)
        #expect(fed.index.loads == NodeLoads(tasks: fed.cluster.state.tasks))

        // Tasks run, one fails, one is removed: their nodes' loads follow the events.
        for number in 1...10 { fed.apply(.updateTaskStatus(id: ObjectID("web-\(number)")!, status: .init(state: .running, timestampMilliseconds: 2_000))) }
        fed.apply(.updateTaskStatus(id: "web-3", status: .init(state: .failed, timestampMilliseconds: 3_000, message: "exit 1")))
        fed.apply(.removeTasks(ids: ["web-4"]))
        #expect(fed.index.loads == NodeLoads(tasks: fed.cluster.state.tasks))
        #expect(fed.index == SchedulingIndex(tasks: fed.cluster.state.tasks), "the fed index equals one rebuilt from the store")

        // More than fits (6 nodes x 4 half-GiB slots = 24, 8 held): 20 new, 16 placed, 4 pending with the reason.
        fed.apply(.createTasks((11...30).map { ClusterCommand.NewTask(id: ObjectID("web-\($0)")!, serviceID: "web", slot: $0, nodeID: nil) }))
        full = fed.cluster.state
        decision = fed.pass()
        #expect(decision == Scheduler().schedule(full))
        #expect(decision.assignments.count == 16 && decision.unplaced.count == 4)
        #expect(fed.index.pendingCount == 4)
        #expect(fed.index == SchedulingIndex(tasks: fed.cluster.state.tasks), "the fed index equals one rebuilt from the store")
        // A second pass places nothing new and gives the same reasons.
        full = fed.cluster.state
        let again = fed.pass()
        #expect(again == Scheduler().schedule(full) && again.assignments.isEmpty)
    }

    @Test("an assignment the store refused is uncounted and placed again on the next pass")
    func refusedAssignmentIsPlacedAgain() {
        var fed = Fed.oneTaskFillingOneNode()
        let state = fed.cluster.state
        // The pass decides, but its proposal is refused: the task changed meanwhile (a new status message).
        let refused = fed.index.schedule(with: Scheduler(), nodes: state.nodes, task: { state.task($0) })
        #expect(refused.assignments.map(\.nodeID) == ["n1"])
        fed.apply(.updateTaskStatus(id: "web-1", status: .init(state: .pending, timestampMilliseconds: 2_000, message: "waiting")))
        #expect(fed.index.loads == NodeLoads(), "the store's pending task holds no node")
        let decision = fed.pass()
        #expect(decision.assignments.map(\.nodeID) == ["n1"], "n1's memory was not held by the refused assignment")
        #expect(fed.cluster.state.task("web-1")?.nodeID == "n1")
    }

    @Test("a refused assignment with no later change is still uncounted when the pass sees the task pending")
    func phantomLoadIsDropped() {
        var fed = Fed.oneTaskFillingOneNode()
        let state = fed.cluster.state
        _ = fed.index.schedule(with: Scheduler(), nodes: state.nodes, task: { state.task($0) })
        // Nothing applied: the next pass reads the task still pending and places it again on n1.
        let decision = fed.pass()
        #expect(decision.assignments.map(\.nodeID) == ["n1"])
        #expect(fed.index.loads == NodeLoads(tasks: fed.cluster.state.tasks))
    }
}


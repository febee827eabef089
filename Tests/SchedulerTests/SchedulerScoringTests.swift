import struct Raft.SeededGenerator
import ClusterState
import Scheduler
import Testing

@Suite("Scheduler scoring, determinism and cost")
struct SchedulerScoringTests {
    @Test("least loaded: fewest tasks of the service, then fewest tasks overall, ties by node id")
    func leastLoaded() {
        var cluster = Cluster()
        for node: ObjectID in ["n1", "n2", "n3"] { cluster.addNode(node) }
        cluster.addService("other", replicas: 2)
        cluster.addTasks("other", slots: 1...2)
        cluster.run("other-1", on: "n1")
        cluster.run("other-2", on: "n1")
        cluster.addService("web", replicas: 7)
        cluster.addTasks("web", slots: 1...7)
        let decision = Scheduler().schedule(cluster.state)
        // n2 and n3 are empty: web goes there first; the service's own count still dominates.
        #expect(decision.assignments.prefix(3).map(\.nodeID) == ["n2", "n3", "n1"])
        #expect(decision.tasksPerNode == ["n1": 2, "n2": 3, "n3": 2])
    }

    @Test("spread over zones balances across label values, not nodes; nodes without the label are one more group")
    func spread() {
        var cluster = Cluster()
        for index in 1...4 { cluster.addNode(ObjectID("a\(index)")!, labels: ["zone": "a"]) }
        cluster.addNode("b1", labels: ["zone": "b"])
        cluster.addNode("c1", labels: ["zone": "c"])
        cluster.addNode("x1")
        cluster.addService("web") { $0.placement.preferences = ["spread=node.labels.zone"] }
        cluster.addTasks("web", slots: 1...8)
        let decision = Scheduler().schedule(cluster.state)
        var perZone: [String: Int] = [:]
        for assignment in decision.assignments {
            perZone[cluster.state.node(assignment.nodeID)!.spec.labels["zone"] ?? "", default: 0] += 1
        }
        #expect(perZone == ["a": 2, "b": 2, "c": 2, "": 2])
        // Within zone a, least loaded spreads over its nodes.
        #expect(decision.tasksPerNode["a1"] == 1 && decision.tasksPerNode["a2"] == 1)
    }

    @Test("spread counts tasks already running in each zone and skips zones with no room")
    func spreadWithExistingTasks() {
        var cluster = Cluster()
        cluster.addNode("a1", labels: ["zone": "a"])
        cluster.addNode("b1", labels: ["zone": "b"])
        cluster.addNode("c1", labels: ["zone": "c"], memoryGiB: 1)
        cluster.addService("web") {
            $0.placement.preferences = ["spread=node.labels.zone"]
            $0.resources.reservedMemoryBytes = 2 * Cluster.gibibyte
        }
        cluster.addTasks("web", slots: 1...2)
        cluster.run("web-1", on: "a1")
        cluster.run("web-2", on: "a1")
        cluster.addTasks("web", slots: 3...5)
        let decision = Scheduler().schedule(cluster.state)
        // Zone a runs 2 already: b catches up to 2, then the tie goes to a (label order); c has no room.
        #expect(decision.assignments.map(\.nodeID) == ["b1", "b1", "a1"])
    }

    @Test("nested preferences: spread over region, then over zone within it")
    func nestedSpread() {
        var cluster = Cluster()
        cluster.addNode("e1", labels: ["region": "eu", "zone": "e1"])
        cluster.addNode("e2", labels: ["region": "eu", "zone": "e2"])
        cluster.addNode("e3", labels: ["region": "eu", "zone": "e2"])
        cluster.addNode("u1", labels: ["region": "us", "zone": "u1"])
        cluster.addService("web") { $0.placement.preferences = ["spread=node.labels.region", "spread=node.labels.zone"] }
        cluster.addTasks("web", slots: 1...8)
        let decision = Scheduler().schedule(cluster.state)
        #expect(decision.tasksPerNode["u1"] == 4)
        #expect(decision.tasksPerNode["e1"] == 2)
        #expect((decision.tasksPerNode["e2"] ?? 0) + (decision.tasksPerNode["e3"] ?? 0) == 2)
    }

    @Test("determinism: the same cluster built in any insertion order gets the same placements and reasons")
    func determinism() {
        func build(seed: UInt64) -> SchedulingDecision {
            var generator = SeededGenerator(seed: seed)
            var cluster = Cluster()
            var nodeCommands: [(ObjectID, [String: String], Int64)] = []
            for index in 0..<30 {
                nodeCommands.append((ObjectID("node-\(index)")!, ["zone": "z\(index % 4)"], Int64(2 + index % 3)))
            }
            nodeCommands.shuffle(using: &generator)
            for (id, labels, memory) in nodeCommands { cluster.addNode(id, labels: labels, memoryGiB: memory) }
            var services: [ObjectID] = ["web", "api", "db", "cache"]
            services.shuffle(using: &generator)
            for service in services {
                cluster.addService(service) {
                    $0.placement.preferences = ["spread=node.labels.zone"]
                    $0.resources.reservedMemoryBytes = Cluster.gibibyte
                    if service == "db" { $0.placement.constraints = ["node.labels.zone!=z1"] }
                }
            }
            var slots = Array(1...25)
            slots.shuffle(using: &generator)
            for slot in slots {
                for service in services { cluster.addTasks(service, slots: slot...slot) }
            }
            return Scheduler().schedule(cluster.state)
        }
        let first = build(seed: 1)
        #expect(first.assignments.count > 0 && first.unplaced.count > 0)
        for seed: UInt64 in 2...5 {
            let other = build(seed: seed)
            #expect(other.assignments.map(\.taskID) == first.assignments.map(\.taskID))
            #expect(other.assignments.map(\.nodeID) == first.assignments.map(\.nodeID))
            #expect(other.unplaced.map(\.reason) == first.unplaced.map(\.reason))
        }
    }

    /// Builds `nodes` nodes in 10 zones and one service with `tasks` pending tasks.
    static func largeCluster(nodes: Int, tasks: Int) -> ClusterState {
        var cluster = Cluster()
        for index in 0..<nodes {
            cluster.addNode(ObjectID("node-\(index)")!, labels: ["zone": "z\(index % 10)"], memoryGiB: 64)
        }
        cluster.addService("web") {
            $0.placement.preferences = ["spread=node.labels.zone"]
            $0.placement.constraints = ["node.role==worker"]
            $0.resources.reservedMemoryBytes = Cluster.gibibyte
        }
        cluster.apply(.createTasks((1...tasks).map { .init(id: ObjectID("web-\($0)")!, serviceID: "web", slot: $0) }))
        return cluster.state
    }

    @Test("cost: filter evaluations grow with nodes + tasks, not nodes × tasks")
    func placementCostIsNotQuadratic() {
        let small = Scheduler().schedule(Self.largeCluster(nodes: 200, tasks: 1_000))
        let moreTasks = Scheduler().schedule(Self.largeCluster(nodes: 200, tasks: 4_000))
        let moreNodes = Scheduler().schedule(Self.largeCluster(nodes: 800, tasks: 1_000))
        #expect(small.assignments.count == 1_000 && moreTasks.assignments.count == 4_000 && moreNodes.assignments.count == 1_000)
        // Static filters (ready, availability, constraints) run once per node; the dynamic
        // resources filter once per node and once more per placed task.
        #expect(small.filterEvaluations == 200 * 4 + 1_000)
        #expect(moreTasks.filterEvaluations == 200 * 4 + 4_000)
        #expect(moreNodes.filterEvaluations == 800 * 4 + 1_000)
        // O(N × nodes) would be 200,000 evaluations for the first.
        #expect(small.filterEvaluations < 200 * 1_000 / 50)
        // The tasks are spread evenly over the 10 zones and the 200 nodes.
        #expect(Set(small.tasksPerNode.values) == [5])
    }
}

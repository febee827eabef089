import ClusterState
import Scheduler
import Testing

@Suite("Scheduler passes with kept node loads")
struct SchedulerNodeLoadsTests {
    /// Three services placed one pass at a time, with resources, host ports
    /// and spread: a pass given the kept loads decides exactly what a pass
    /// given every task in the store decides, and the kept loads equal the
    /// loads counted from the store.
    @Test("batches with kept NodeLoads decide as full passes over the store")
    func keptLoadsMatchFullPasses() {
        var cluster = Cluster()
        for index in 1...9 {
            cluster.addNode(ObjectID("n\(index)")!, labels: ["zone": "z\(index % 3)"], cpus: 2, memoryGiB: 2)
        }
        var loads = NodeLoads()
        let scheduler = Scheduler()
        for (number, service) in (["api", "web", "db"] as [ObjectID]).enumerated() {
            cluster.addService(service, replicas: 12) {
                $0.placement.preferences = ["spread=node.labels.zone"]
                $0.resources.reservedMemoryBytes = Cluster.gibibyte / 2
                if number == 1 { $0.ports = [TaskTemplate.PublishedPort(publishedPort: 8080, targetPort: 80)] }
            }
            cluster.addTasks(service, slots: 1...12)
            // The tasks still pending from earlier passes (web's extra replicas) come back every pass.
            let pending = cluster.state.tasks.filter { $0.status.state == .pending }
            let kept = scheduler.schedule(nodes: cluster.state.nodes, pending: pending, loads: &loads)
            let full = scheduler.schedule(cluster.state)
            #expect(kept == full, "pass \(number + 1) (\(service)) differs from a full pass")
            for assignment in full.assignments {
                cluster.apply(.assignTask(id: assignment.taskID, expectedVersion: assignment.expectedVersion, nodeID: assignment.nodeID))
            }
            #expect(loads == NodeLoads(tasks: cluster.state.tasks), "kept loads drifted from the store after pass \(number + 1)")
        }
        // web's host port 8080 fits once per node: 3 of its 12 tasks stay pending.
        #expect(scheduler.schedule(cluster.state).unplaced.map(\.serviceID) == ["web", "web", "web"])
    }

    @Test("a task that ends gives its node back: remove restores the loads before it")
    func removeGivesBack() {
        var cluster = Cluster()
        cluster.addNode("n1", cpus: 1, memoryGiB: 1)
        cluster.addService("web", replicas: 1) { $0.resources.reservedMemoryBytes = Cluster.gibibyte }
        cluster.addTasks("web", slots: 1...1)
        var loads = NodeLoads()
        let first = Scheduler().schedule(nodes: cluster.state.nodes, pending: cluster.state.tasks, loads: &loads)
        #expect(first.assignments.map(\.nodeID) == ["n1"])
        cluster.run("web-1", on: "n1")
        cluster.addTasks("web", slots: 2...2)
        // n1's memory is held by web-1: web-2 stays pending.
        let second = Scheduler().schedule(nodes: cluster.state.nodes, pending: [cluster.state.task("web-2")!], loads: &loads)
        #expect(second.assignments.isEmpty && second.unplaced.map(\.taskID) == ["web-2"])
        loads.remove(cluster.state.task("web-1")!)
        #expect(loads == NodeLoads())
        let third = Scheduler().schedule(nodes: cluster.state.nodes, pending: [cluster.state.task("web-2")!], loads: &loads)
        #expect(third.assignments.map(\.nodeID) == ["n1"])
    }
}

import ClusterState
import Orchestrator
import Testing

@Suite("Orchestrator: global services and jobs")
struct GlobalAndJobTests {
    @Test("global service on 3 nodes; drain one: its task is shut down and not replaced there; a new node gets one")
    func globalDrain() {
        var harness = Harness()
        for node: ObjectID in ["n1", "n2", "n3"] { harness.addNode(node) }
        harness.createService("agent", mode: .global)
        harness.settle()
        #expect(harness.runningNodes("agent") == ["n1", "n2", "n3"])
        #expect(harness.tasks(of: "agent").allSatisfy { $0.slot == 0 })

        harness.setNode("n2", availability: .drain)
        harness.settle()
        #expect(harness.runningNodes("agent") == ["n1", "n3"])
        #expect(harness.tasks(of: "agent").filter { $0.nodeID == "n2" }.map(\.status.state) == [.shutdown])

        harness.addNode("n4")
        harness.setNode("n3", availability: .pause)
        harness.settle()
        #expect(harness.runningNodes("agent") == ["n1", "n3", "n4"], "paused keeps its task")
        #expect(ServiceInvariants.checkConverged(harness.state).isEmpty, "a paused node keeps its task")

        harness.setNode("n2", availability: .active)
        harness.setNode("n3", availability: .active)
        harness.settle()
        #expect(harness.runningNodes("agent") == ["n1", "n2", "n3", "n4"])
        #expect(ServiceInvariants.checkConverged(harness.state).isEmpty)
        #expect(harness.violations.isEmpty)
    }

    @Test("global service respects constraints, and a failed task restarts on its node")
    func globalConstraintsAndRestart() {
        var harness = Harness()
        harness.addNode("n1", labels: ["gpu": "yes"])
        harness.addNode("n2")
        harness.createService("gpu", mode: .global) { $0.placement.constraints = ["node.labels.gpu==yes"] }
        harness.settle()
        #expect(harness.runningNodes("gpu") == ["n1"])
        let first = harness.tasks(of: "gpu")[0]
        harness.end(first.id, .failed)
        harness.settle()
        #expect(harness.runningNodes("gpu") == ["n1"])
        #expect(harness.tasks(of: "gpu").count == 2)
        harness.setNode("n1", labels: [:])
        harness.settle()
        #expect(harness.runningNodes("gpu").isEmpty)
    }

    @Test("node down: a global task is stopped and comes back when the node does")
    func globalNodeDown() {
        var harness = Harness()
        harness.addNode("n1")
        harness.addNode("n2")
        harness.createService("agent", mode: .global)
        harness.settle()
        harness.setNode("n2", state: .down)
        harness.settle()
        #expect(harness.runningNodes("agent") == ["n1"], "the lost task still reads running, but is desired shut down")
        #expect(harness.tasks(of: "agent").filter { $0.nodeID == "n2" }.map(\.desiredState) == [.shutdown])
        harness.setNode("n2", state: .ready)
        harness.settle()
        #expect(harness.runningNodes("agent") == ["n1", "n2"])
        #expect(ServiceInvariants.checkConverged(harness.state).isEmpty)
    }

    @Test("replicated job: runs to completions with at most maxConcurrent at once, restarts failures, then stops")
    func replicatedJob() {
        var harness = Harness()
        harness.addNode("n1")
        harness.addNode("n2")
        harness.createService("batch", mode: .replicatedJob(completions: 5, maxConcurrent: 2)) {
            $0.restartPolicy = .init(condition: .onFailure, delayMilliseconds: 0)
        }
        var failedOnce = false
        for _ in 0..<20 {
            harness.reconcile()
            harness.schedule()
            harness.runAgents()
            let live = harness.tasks(of: "batch").filter { !$0.status.state.isTerminal }
            #expect(live.count <= 2)
            // Each running task completes, except slot 3 which fails once.
            for task in live where task.status.state == .running {
                if task.slot == 3 && !failedOnce {
                    failedOnce = true
                    harness.end(task.id, .failed)
                } else {
                    harness.end(task.id, .complete)
                }
            }
        }
        let tasks = harness.tasks(of: "batch")
        #expect(tasks.filter { $0.status.state == .complete }.map(\.slot).sorted() == [1, 2, 3, 4, 5])
        #expect(tasks.filter { $0.status.state == .failed }.map(\.slot) == [3])
        #expect(harness.reconcile().commands.isEmpty)
        #expect(ServiceInvariants.servicesConverged(harness.state).isEmpty)
    }

    @Test("global job: one completion per node, then nothing; a forced update runs it again")
    func globalJob() {
        var harness = Harness()
        harness.addNode("n1")
        harness.addNode("n2")
        harness.createService("setup", mode: .globalJob)
        harness.settle()
        for task in harness.tasks(of: "setup") { harness.end(task.id, .complete) }
        harness.settle()
        #expect(harness.tasks(of: "setup").map(\.status.state) == [.complete, .complete])
        #expect(ServiceInvariants.servicesConverged(harness.state).isEmpty)
        harness.updateService("setup", force: true)
        harness.settle()
        #expect(harness.tasks(of: "setup").filter { $0.status.state == .running }.count == 2)
    }
}

import ClusterState
import Scheduler
import Testing

@Suite("Scheduler filters and reasons")
struct SchedulerFilterTests {
    @Test("a node that is not ready, paused or drained takes nothing, and the reason counts each")
    func readinessAndAvailability() {
        var cluster = Cluster()
        cluster.addNode("n1", state: .down)
        cluster.addNode("n2", availability: .pause)
        cluster.addNode("n3", availability: .drain)
        cluster.addNode("n4", availability: .drain)
        cluster.addService("web")
        cluster.addTasks("web", slots: 1...1)
        let decision = Scheduler().schedule(cluster.state)
        #expect(decision.assignments.isEmpty)
        #expect(decision.reasons == ["web-1": "no suitable node (1 node is not ready; 1 node is paused; 2 nodes are drained)"])
    }

    @Test("the reason names the memory a task reserves: no suitable node (1 node is drained; 2 nodes lack 4 GiB memory)")
    func memoryReason() {
        var cluster = Cluster()
        cluster.addNode("n1", availability: .drain)
        cluster.addNode("n2", memoryGiB: 2)
        cluster.addNode("n3", memoryGiB: 3)
        cluster.addService("db") { $0.resources.reservedMemoryBytes = 4 * Cluster.gibibyte }
        cluster.addTasks("db", slots: 1...1)
        let decision = Scheduler().schedule(cluster.state)
        #expect(decision.reasons["db-1"] == "no suitable node (1 node is drained; 2 nodes lack 4 GiB memory)")
    }

    @Test("reserved CPU is checked against the node's CPUs")
    func cpuReason() {
        var cluster = Cluster()
        cluster.addNode("n1", cpus: 1)
        cluster.addService("calc") { $0.resources.reservedNanoCPUs = Cluster.cpu * 3 / 2 }
        cluster.addTasks("calc", slots: 1...1)
        #expect(Scheduler().schedule(cluster.state).reasons["calc-1"] == "no suitable node (1 node lacks 1.5 CPUs)")
    }

    @Test("resources account for tasks already on a node and for tasks placed earlier in the same batch")
    func resourcesAcrossBatch() {
        var cluster = Cluster()
        cluster.addNode("n1", memoryGiB: 8)
        cluster.addNode("n2", memoryGiB: 8)
        cluster.addService("big") { $0.resources.reservedMemoryBytes = 3 * Cluster.gibibyte }
        cluster.addTasks("big", slots: 1...1)
        cluster.run("big-1", on: "n1")
        cluster.addTasks("big", slots: 2...6)
        let decision = Scheduler().schedule(cluster.state)
        // n1 holds 3 GiB already: room for one more; n2 for two.
        #expect(decision.tasksPerNode == ["n1": 1, "n2": 2])
        #expect(decision.unplaced.map(\.taskID) == ["big-5", "big-6"])
        #expect(decision.reasons["big-6"] == "no suitable node (2 nodes lack 3 GiB memory)")
    }

    @Test("a terminal task holds no resources")
    func terminalTasksFreeResources() {
        var cluster = Cluster()
        cluster.addNode("n1", memoryGiB: 4)
        cluster.addService("big") { $0.resources.reservedMemoryBytes = 3 * Cluster.gibibyte }
        cluster.addTasks("big", slots: 1...1)
        cluster.run("big-1", on: "n1")
        cluster.apply(.updateTaskStatus(id: "big-1", status: .init(state: .failed)))
        cluster.addTasks("big", slots: 2...2)
        #expect(Scheduler().schedule(cluster.state).placements == ["big-2": "n1"])
    }

    @Test("constraints on node id, hostname, role and labels, with == and !=")
    func constraints() {
        var cluster = Cluster()
        cluster.addNode("m1", role: .manager, labels: ["zone": "eu"])
        cluster.addNode("w1", labels: ["zone": "eu", "disk": "ssd"])
        cluster.addNode("w2", labels: ["zone": "us"])
        cluster.addService("a") { $0.placement.constraints = ["node.labels.zone==eu", "node.role!=manager"] }
        cluster.addService("b") { $0.placement.constraints = ["node.hostname==host-w2"] }
        cluster.addService("c") { $0.placement.constraints = ["node.id == m1"] }
        cluster.addService("d") { $0.placement.constraints = ["node.labels.disk!=ssd", "node.labels.zone==EU"] }
        cluster.addService("e") { $0.placement.constraints = ["node.labels.zone==asia"] }
        for service: ObjectID in ["a", "b", "c", "d", "e"] { cluster.addTasks(service, slots: 1...1) }
        let decision = Scheduler().schedule(cluster.state)
        #expect(decision.placements == ["a-1": "w1", "b-1": "w2", "c-1": "m1", "d-1": "m1"])
        #expect(decision.reasons == ["e-1": "no suitable node (3 nodes do not satisfy constraint node.labels.zone==asia)"])
    }

    @Test("the first constraint a node fails is the one counted")
    func constraintReasonCountsFirstFailure() {
        var cluster = Cluster()
        cluster.addNode("n1", labels: ["zone": "us"])
        cluster.addNode("n2", labels: ["zone": "eu"])
        cluster.addService("a") { $0.placement.constraints = ["node.labels.zone==eu", "node.labels.gpu==yes"] }
        cluster.addTasks("a", slots: 1...1)
        #expect(Scheduler().schedule(cluster.state).reasons["a-1"]
            == "no suitable node (1 node does not satisfy constraint node.labels.zone==eu; 1 node does not satisfy constraint node.labels.gpu==yes)")
    }

    @Test("platform: an image for linux/arm64 goes only to arm64 nodes; plain linux goes anywhere on linux")
    func platform() {
        var cluster = Cluster()
        cluster.addNode("amd", platform: "linux/amd64")
        cluster.addNode("arm", platform: "linux/arm64/v8")
        cluster.addService("a") { $0.placement.platforms = ["linux/arm64"] }
        cluster.addService("b") { $0.placement.platforms = ["windows/amd64"] }
        cluster.addService("c") { $0.placement.platforms = ["linux"] }
        for service: ObjectID in ["a", "b", "c"] { cluster.addTasks(service, slots: 1...1) }
        let decision = Scheduler().schedule(cluster.state)
        #expect(decision.placements["a-1"] == "arm")
        #expect(decision.placements["c-1"] != nil)
        #expect(decision.reasons["b-1"] == "no suitable node (2 nodes do not run platform windows/amd64)")
    }

    @Test("a host-mode published port goes once per node, counting other services' tasks and the batch")
    func hostPorts() {
        var cluster = Cluster()
        cluster.addNode("n1")
        cluster.addNode("n2")
        cluster.addNode("n3")
        cluster.addService("other") { $0.ports = [.init(publishedPort: 8080, targetPort: 80)] }
        cluster.addTasks("other", slots: 1...1)
        cluster.run("other-1", on: "n1")
        cluster.addService("web") { $0.ports = [.init(publishedPort: 8080, targetPort: 80), .init(publishedPort: 53, targetPort: 53, transportProtocol: .udp)] }
        cluster.addService("ingress") { $0.ports = [.init(publishedPort: 8080, targetPort: 80, mode: .ingress)] }
        cluster.addTasks("web", slots: 1...3)
        cluster.addTasks("ingress", slots: 1...1)
        let decision = Scheduler().schedule(cluster.state)
        // ingress (placed first: services go in id order) took n2, so web starts on the emptier n3.
        #expect(decision.placements["ingress-1"] == "n2")
        #expect(decision.placements["web-1"] == "n3")
        #expect(decision.placements["web-2"] == "n2")
        #expect(decision.reasons["web-3"] == "no suitable node (3 nodes already publish host port 8080/tcp)")
    }

    @Test("max replicas per node")
    func maxReplicasPerNode() {
        var cluster = Cluster()
        cluster.addNode("n1")
        cluster.addNode("n2")
        cluster.addService("web") { $0.placement.maxReplicasPerNode = 2 }
        cluster.addTasks("web", slots: 1...5)
        let decision = Scheduler().schedule(cluster.state)
        #expect(decision.tasksPerNode == ["n1": 2, "n2": 2])
        #expect(decision.reasons["web-5"] == "no suitable node (2 nodes already run 2 tasks of the service (max 2 per node))")
    }

    @Test("a task bound to a node (global services) goes there or says why not")
    func boundTasks() {
        var cluster = Cluster()
        cluster.addNode("n1")
        cluster.addNode("n2", memoryGiB: 1)
        cluster.addService("agent") { $0.resources.reservedMemoryBytes = 2 * Cluster.gibibyte }
        cluster.apply(.createTasks([.init(id: "agent-n1", serviceID: "agent", slot: 0, nodeID: "n1"),
                                    .init(id: "agent-n2", serviceID: "agent", slot: 0, nodeID: "n2")]))
        let decision = Scheduler().schedule(cluster.state)
        #expect(decision.placements == ["agent-n1": "n1"])
        #expect(decision.reasons == ["agent-n2": "no suitable node (1 node lacks 2 GiB memory)"])
    }

    @Test("no nodes at all, and tasks whose desired state is no longer running are left alone")
    func emptyCluster() {
        var cluster = Cluster()
        cluster.addService("web")
        cluster.addTasks("web", slots: 1...2)
        cluster.apply(.setTaskDesiredState(id: "web-2", expectedVersion: nil, desiredState: .shutdown))
        let decision = Scheduler().schedule(cluster.state)
        #expect(decision.reasons == ["web-1": "no suitable node (the cluster has no nodes)"])
    }

    @Test("assignments carry the task version read, and the reason can be written to the pending status once")
    func commandsAndStatusUpdates() throws {
        var cluster = Cluster()
        cluster.addNode("n1", availability: .drain)
        cluster.addNode("n2")
        cluster.addService("web") { $0.placement.constraints = ["node.id==n1"] }
        cluster.addService("api")
        cluster.addTasks("web", slots: 1...1)
        cluster.addTasks("api", slots: 1...1)
        let decision = Scheduler().schedule(cluster.state)
        let version = cluster.state.task("api-1")!.meta.version
        #expect(decision.commands == [.assignTask(id: "api-1", expectedVersion: version, nodeID: "n2")])
        let updates = decision.statusUpdates(in: cluster.state, now: 5_000)
        #expect(updates.count == 1)
        for update in updates { cluster.apply(update) }
        #expect(cluster.state.task("web-1")?.status.message == "no suitable node (1 node is drained; 1 node does not satisfy constraint node.id==n1)")
        #expect(Scheduler().schedule(cluster.state).statusUpdates(in: cluster.state, now: 6_000).isEmpty)
        for command in decision.commands { cluster.apply(command) }
        #expect(cluster.state.task("api-1")?.status.state == .assigned)
    }
}

@Suite("Placement rules parsing")
struct PlacementParsingTests {
    @Test("well-formed constraints parse once, with spaces and any case of value",
          arguments: ["node.labels.zone==eu", " node.labels.zone == eu ", "node.role!=manager", "node.id==abc",
                      "node.hostname==h1", "node.platform.os==linux", "node.platform.arch!=arm64", "node.labels.a.b==c"])
    func wellFormed(_ text: String) throws {
        let constraint = try PlacementConstraint.parse(text)
        #expect(constraint.text == text)
    }

    @Test("malformed constraints are refused with what to write instead")
    func malformed() {
        let cases: [(String, String)] = [
            ("zone=eu", "no operator; write KEY==VALUE or KEY!=VALUE, for example node.labels.zone==eu"),
            ("==eu", "the key before == is missing; use node.id, node.hostname, node.role, node.labels.<name>, node.platform.os or node.platform.arch"),
            ("node.labels.zone==", "the value after == is missing"),
            ("node.zone==eu", "unknown key 'node.zone'; use node.id, node.hostname, node.role, node.labels.<name>, node.platform.os or node.platform.arch"),
            ("node.labels.==eu", "node.labels. needs a label name, as in node.labels.zone==eu"),
            ("node.role==boss", "node.role is manager or worker, not 'boss'"),
            ("node.labels.a==b==c", "the value 'b==c' holds a second operator; write one KEY==VALUE per constraint"),
        ]
        for (text, reason) in cases {
            #expect(throws: PlacementError(field: "constraint", text: text, reason: reason)) {
                try PlacementConstraint.parse(text)
            }
        }
    }

    @Test("preferences: only spread over a node label")
    func preferences() throws {
        #expect(try PlacementPreference.parse("spread=node.labels.zone").label == "zone")
        #expect(throws: PlacementError.self) { try PlacementPreference.parse("binpack=node.labels.zone") }
        #expect(throws: PlacementError.self) { try PlacementPreference.parse("spread=node.role") }
    }

    @Test("a service with a malformed rule keeps its tasks pending with the parse error as reason")
    func malformedRuleInService() {
        var cluster = Cluster()
        cluster.addNode("n1")
        cluster.addService("web") { $0.placement.constraints = ["node.labels.zone=eu"] }
        cluster.addTasks("web", slots: 1...2)
        let decision = Scheduler().schedule(cluster.state)
        #expect(decision.assignments.isEmpty)
        #expect(decision.reasons["web-2"]
            == "invalid placement constraint 'node.labels.zone=eu': no operator; write KEY==VALUE or KEY!=VALUE, for example node.labels.zone==eu")
    }
}

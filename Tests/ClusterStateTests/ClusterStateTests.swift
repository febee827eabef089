import Testing
@testable import ClusterState

/// Applies commands at consecutive indexes, as a manager applies the log.
struct Applier {
    var state = ClusterState()
    var index: UInt64 = 0

    @discardableResult
    mutating func apply(_ command: ClusterCommand, time: Int64 = 1_000) throws(ClusterStateError) -> [ClusterEvent] {
        index += 1
        return try state.apply(command, context: ApplyContext(index: index, timeMilliseconds: time))
    }
}

let web: ObjectID = "web"
let api: ObjectID = "api"
let node1: ObjectID = "node-1"
let node2: ObjectID = "node-2"

func webSpec(replicas: Int = 3, name: String = "web") -> Service.Spec {
    Service.Spec(name: name, mode: .replicated(replicas: replicas), task: TaskTemplate(image: "busybox:latest"))
}

@Suite("ClusterState apply")
struct ClusterStateTests {
    @Test("create a service; its version is the log index that wrote it")
    func createService() throws {
        var applier = Applier()
        let events = try applier.apply(.createService(id: web, spec: webSpec()))
        let service = try #require(applier.state.service(web))
        #expect(service.meta.version == 1)
        #expect(service.meta.createdAtMilliseconds == 1_000)
        #expect(events.map(\.action) == [.created])
        #expect(applier.state.service(named: "web")?.id == web)
    }

    @Test("a duplicate name is refused with the holder named, and nothing is written")
    func duplicateName() throws {
        var applier = Applier()
        try applier.apply(.createService(id: web, spec: webSpec()))
        let before = applier.state
        #expect(throws: ClusterStateError.nameInUse(kind: .service, name: "web", id: web)) {
            try applier.apply(.createService(id: api, spec: webSpec()))
        }
        #expect(applier.state.services == before.services)
    }

    @Test("compare-and-set: of two writers that read the same version, the second is refused, so no update is lost")
    func compareAndSet() throws {
        var applier = Applier()
        try applier.apply(.createService(id: web, spec: webSpec(replicas: 3)))
        let readVersion = applier.state.service(web)!.meta.version
        try applier.apply(.updateService(id: web, expectedVersion: readVersion, spec: webSpec(replicas: 5), force: false))
        #expect(throws: ClusterStateError.versionConflict(kind: .service, id: web, expected: readVersion, actual: 2)) {
            try applier.apply(.updateService(id: web, expectedVersion: readVersion, spec: webSpec(replicas: 7), force: false))
        }
        #expect(applier.state.service(web)?.spec.mode == .replicated(replicas: 5))
        #expect(applier.state.service(web)?.previousSpec?.mode == .replicated(replicas: 3))
        try applier.apply(.rollbackService(id: web, expectedVersion: 2))
        #expect(applier.state.service(web)?.spec.mode == .replicated(replicas: 3))
    }

    @Test("task status only moves forward, and a terminal state is final")
    func taskStateMovesForward() throws {
        var applier = Applier()
        try applier.apply(.createNode(id: node1, spec: Node.Spec(role: .worker), status: Node.Status(state: .ready), managerStatus: nil))
        try applier.apply(.createService(id: web, spec: webSpec()))
        try applier.apply(.createTasks([.init(id: "t1", serviceID: web, slot: 1)]))
        #expect(applier.state.task("t1")?.status.state == .pending)
        try applier.apply(.assignTask(id: "t1", expectedVersion: 3, nodeID: node1))
        try applier.apply(.updateTaskStatus(id: "t1", status: .init(state: .running)))
        #expect(throws: ClusterStateError.invalidTransition(taskID: "t1", from: .running, to: .starting)) {
            try applier.apply(.updateTaskStatus(id: "t1", status: .init(state: .starting)))
        }
        try applier.apply(.updateTaskStatus(id: "t1", status: .init(state: .failed, error: "exit 1", exitCode: 1)))
        #expect(throws: ClusterStateError.invalidTransition(taskID: "t1", from: .failed, to: .orphaned)) {
            try applier.apply(.updateTaskStatus(id: "t1", status: .init(state: .orphaned)))
        }
        #expect(applier.state.task("t1")?.status.exitCode == 1)
    }

    @Test("a batch applies all of its commands or none")
    func batchIsAtomic() throws {
        var applier = Applier()
        try applier.apply(.createService(id: web, spec: webSpec()))
        let before = applier.state
        #expect(throws: ClusterStateError.notFound(kind: .service, id: "ghost")) {
            try applier.apply(.batch([
                .createTasks([.init(id: "t1", serviceID: web, slot: 1)]),
                .createTasks([.init(id: "t2", serviceID: "ghost", slot: 2)]),
            ]))
        }
        #expect(applier.state.tasks.isEmpty)
        #expect(applier.state.services == before.services)
        try applier.apply(.batch([.createTasks([.init(id: "t1", serviceID: web, slot: 1)]), .createTasks([.init(id: "t2", serviceID: web, slot: 2)])]))
        #expect(applier.state.tasks(ofService: web).map(\.slot) == [1, 2])
    }

    /// Batches on distinct tasks are checked first and applied in place (no
    /// copy of the tables); batches whose commands build on one another
    /// still see the earlier ones. Both stay all or nothing.
    @Test("a batch on distinct tasks is all or nothing, and a batch may build on its own commands")
    func batchOnDistinctTasks() throws {
        var applier = Applier()
        try applier.apply(.createService(id: web, spec: webSpec()))
        try applier.apply(.createNode(id: node1, spec: Node.Spec(role: .worker), status: Node.Status(state: .ready), managerStatus: nil))
        try applier.apply(.batch([
            .createTasks([.init(id: "t1", serviceID: web, slot: 1)]),
            .assignTask(id: "t1", expectedVersion: applier.index + 1, nodeID: node1),
        ]))
        #expect(applier.state.task("t1")?.status.state == .assigned)
        try applier.apply(.createTasks([.init(id: "t2", serviceID: web, slot: 2), .init(id: "t3", serviceID: web, slot: 3)]))
        let before = applier.state
        // The last command is refused (t1 cannot go back to pending): nothing changes.
        #expect(throws: ClusterStateError.self) {
            try applier.apply(.batch([
                .assignTask(id: "t2", expectedVersion: before.task("t2")!.meta.version, nodeID: node1),
                .setTaskDesiredState(id: "t3", expectedVersion: nil, desiredState: .shutdown),
                .updateTaskStatus(id: "t1", status: ServiceTask.Status(state: .pending)),
            ]))
        }
        #expect(applier.state.tasks == before.tasks)
        let events = try applier.apply(.batch([
            .assignTask(id: "t2", expectedVersion: before.task("t2")!.meta.version, nodeID: node1),
            .setTaskDesiredState(id: "t3", expectedVersion: nil, desiredState: .shutdown),
            .updateTaskStatus(id: "t1", status: ServiceTask.Status(state: .running, timestampMilliseconds: 5)),
        ]))
        #expect(events.map(\.id) == ["t2", "t3", "t1"])
        #expect(applier.state.task("t1")?.status.state == .running)
        #expect(applier.state.task("t2")?.nodeID == node1)
        #expect(applier.state.task("t3")?.desiredState == .shutdown)
    }

    @Test("removing a service shuts its tasks down; removing a node orphans its tasks")
    func removalsCascade() throws {
        var applier = Applier()
        try applier.apply(.createNode(id: node1, spec: Node.Spec(role: .worker), status: Node.Status(state: .ready), managerStatus: nil))
        try applier.apply(.createService(id: web, spec: webSpec()))
        try applier.apply(.createService(id: api, spec: webSpec(name: "api")))
        try applier.apply(.createTasks([.init(id: "w1", serviceID: web, slot: 1, nodeID: node1), .init(id: "a1", serviceID: api, slot: 1, nodeID: node1)]))
        try applier.apply(.removeService(id: web, expectedVersion: nil))
        #expect(applier.state.task("w1")?.desiredState == .shutdown)
        try applier.apply(.removeNode(id: node1, expectedVersion: nil))
        #expect(applier.state.task("a1")?.status.state == .orphaned)
        #expect(applier.state.task("a1")?.status.message.contains("node-1") == true)
    }

    @Test("a manager node cannot be removed while it is a Raft member")
    func managerRemovalRefused() throws {
        var applier = Applier()
        try applier.apply(.createNode(id: node1, spec: Node.Spec(role: .manager), status: Node.Status(state: .ready), managerStatus: .init(raftID: 1, address: "127.0.0.1:4242")))
        #expect(throws: ClusterStateError.self) { try applier.apply(.removeNode(id: node1, expectedVersion: nil)) }
        #expect(applier.state.node(node1) != nil)
    }

    @Test("bad specs are refused with the field named")
    func badSpecs() throws {
        var applier = Applier()
        let cases: [(Service.Spec, String)] = [
            (webSpec(name: ""), "service name"),
            (webSpec(name: "-bad"), "service name"),
            (webSpec(name: String(repeating: "a", count: 64)), "service name"),
            (webSpec(replicas: -1), "replicas"),
            (webSpec(replicas: 10_001), "replicas"),
            (Service.Spec(name: "x", task: TaskTemplate(image: "")), "image"),
            // Published 0 (a free port per task) is for mode=host only.
            ({ var spec = webSpec(); spec.task.ports = [.init(publishedPort: 0, targetPort: 80, mode: .ingress)]; return spec }(), "ports"),
            ({ var spec = webSpec(); spec.task.ports = [.init(publishedPort: 8080, targetPort: 0)]; return spec }(), "ports"),
            ({ var spec = webSpec(); spec.task.healthCheck = .init(command: ["true"], retries: -1); return spec }(), "health check"),
            ({ var spec = webSpec(); spec.task.healthCheck = .init(command: ["true"], disabled: true); return spec }(), "health check"),
            ({ var spec = webSpec(); spec.task.ports = [.init(publishedPort: 80, targetPort: 80), .init(publishedPort: 80, targetPort: 81)]; return spec }(), "ports"),
            ({ var spec = webSpec(); spec.task.resources.reservedMemoryBytes = -5; return spec }(), "reserved memory"),
            // Where a port is bound is the node's to report, not the spec's to choose.
            ({ var spec = webSpec(); spec.task.ports = [.init(publishedPort: 80, targetPort: 80, hostAddress: "127.0.0.1")]; return spec }(), "ports"),
            ({ var spec = webSpec(); spec.task.mounts = [.init(kind: .bind, source: "/a", target: "relative")]; return spec }(), "mounts"),
        ]
        for (spec, field) in cases {
            #expect {
                try applier.apply(.createService(id: web, spec: spec))
            } throws: { error in
                guard case ClusterStateError.invalidSpec(let reported, _) = error else { return false }
                return reported == field
            }
        }
        #expect(applier.state.services.isEmpty)
        #expect(throws: ClusterStateError.self) { try applier.apply(.createSecret(id: "s", spec: .init(name: "big", data: Array(repeating: 0, count: 600_000)))) }
        #expect(throws: ClusterStateError.self) { try applier.apply(.createNetwork(id: "n", spec: .init(name: "net", subnet: "10.0.0.0/33"))) }
    }

    @Test("route weights sum to 100 and name only existing services")
    func routes() throws {
        var applier = Applier()
        try applier.apply(.createService(id: web, spec: webSpec()))
        try applier.apply(.createService(id: api, spec: webSpec(name: "api")))
        #expect(throws: ClusterStateError.self) {
            try applier.apply(.createRoute(id: "r", spec: .init(name: "front", publishedPort: 8080, backends: [.init(serviceID: web, weight: 90)])))
        }
        #expect(throws: ClusterStateError.notFound(kind: .service, id: "ghost")) {
            try applier.apply(.createRoute(id: "r", spec: .init(name: "front", publishedPort: 8080, backends: [.init(serviceID: "ghost", weight: 100)])))
        }
        try applier.apply(.createRoute(id: "r", spec: .init(name: "front", publishedPort: 8080, backends: [.init(serviceID: web, weight: 90), .init(serviceID: api, weight: 10)])))
        #expect(throws: ClusterStateError.inUse(kind: .service, id: api, by: "route front")) {
            try applier.apply(.removeService(id: api, expectedVersion: nil))
        }
        let version = applier.state.route("r")!.meta.version
        try applier.apply(.updateRoute(id: "r", expectedVersion: version, spec: .init(name: "front", publishedPort: 8080, backends: [.init(serviceID: web, weight: 100)])))
        try applier.apply(.removeService(id: api, expectedVersion: nil))
    }

    @Test("a proposal round-trips through bytes; garbage is refused and counted as applied")
    func proposals() throws {
        let proposal = ClusterProposal(timeMilliseconds: 42, command: .createService(id: web, spec: webSpec()))
        #expect(try ClusterProposal(encoded: proposal.encoded()) == proposal)
        var state = ClusterState()
        try state.apply(entryData: proposal.encoded(), index: 1)
        #expect(state.service(web)?.meta.createdAtMilliseconds == 42)
        #expect(throws: ClusterStateError.self) { try state.apply(entryData: Array("{not json".utf8), index: 2) }
        #expect(state.appliedIndex == 2)
        #expect(state.services.count == 1)
    }

    @Test("the change log serves events after an index, and says when they were dropped")
    func changeLog() throws {
        var log = ChangeLog(capacity: 3)
        var applier = Applier()
        for number in 1...5 {
            log.append(try applier.apply(.createSecret(id: ObjectID("s\(number)")!, spec: .init(name: "s\(number)", data: [1]))))
        }
        #expect(log.events(after: 3)?.map(\.index) == [4, 5])
        #expect(log.events(after: 1) == nil)
        #expect(log.events(after: 2)?.map(\.index) == [3, 4, 5])
    }
}

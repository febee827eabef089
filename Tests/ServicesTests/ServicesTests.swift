import Agent
import ClusterState
@testable import Daemon
import Foundation
import Images
import Net
import Runtime
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A one-node cluster in this process (`shoal dev`'s code path) with a
/// busybox image imported, removed with every container by `close()`.
final class DevNode: @unchecked Sendable {
    let directory: String
    private(set) var daemon: Daemon
    let client: ControlClient
    let cgroupParent: String

    static let busyboxTarball: String? = {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/bin/busybox") else { return nil }
        let root = NSTemporaryDirectory() + "shoal-services-image-\(getpid())"
        let script = """
            set -e; rm -rf \(root); mkdir -p \(root)/rootfs/bin \(root)/rootfs/etc \(root)/rootfs/tmp \(root)/rootfs/proc \(root)/rootfs/sys \(root)/rootfs/dev
            cp /bin/busybox \(root)/rootfs/bin/busybox; chroot \(root)/rootfs /bin/busybox --install -s /bin
            printf 'root:x:0:0:root:/root:/bin/sh\\n' > \(root)/rootfs/etc/passwd; printf 'root:x:0:\\n' > \(root)/rootfs/etc/group
            tar -C \(root)/rootfs -cf \(root)/busybox.tar .
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        guard (try? process.run()) != nil else { return nil }
        process.waitUntilExit()
        ExitCleanup.removeTree(atExit: NSTemporaryDirectory() + "shoal-services-image-\(getpid())")
        return process.terminationStatus == 0 ? root + "/busybox.tar" : nil
    }()

    static var available: Bool { busyboxTarball != nil }

    /// Tasks run on the node bridge: this test process's own, never the
    /// shoal0 of a `shoal dev` on this machine nor another test process's.
    static let testBridge = BridgeConfiguration(name: "shoalsv\(getpid() % 100_000)", subnet: IPv4Subnet("10.92.\(getpid() % 250).0/24")!)

    /// `registry`: serve `shoal dev`'s registry on a free loopback port.
    init(runsAgent: Bool = true, heartbeatPeriod: Duration = .milliseconds(500), registry: Bool = false) async throws {
        let token = UUID().uuidString.prefix(8).lowercased()
        directory = NSTemporaryDirectory() + "shoal-services-\(token)"
        var settings = DaemonSettings(dataDirectory: directory, socketPath: directory + "/shoal.sock")
        settings.runsAgent = runsAgent
        settings.heartbeatPeriod = heartbeatPeriod
        settings.cgroupParent = "shoal-test-\(token)"
        settings.bridge = Self.testBridge
        if registry { settings.registryListenAddress = .loopbackIPv4(port: 0) }
        cgroupParent = settings.cgroupParent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if let tarball = Self.busyboxTarball {
            _ = try ImageImporter(store: try ContentStore(root: directory + "/images")).importRootfs(tarballAt: tarball, tag: "shoal.local/busybox:latest")
        }
        daemon = Daemon(settings: settings)
        try await daemon.start()
        try await daemon.ensureDevelopmentCluster()
        client = try ControlClient(host: "unix://" + settings.socketPath)
    }

    /// Stops the daemon (its task containers keep running, held by their
    /// monitors) and starts a new one on the same directory, as a restarted
    /// `shoal dev` does.
    func restart() async throws {
        await daemon.stop()
        daemon = Daemon(settings: daemon.settings)
        try await daemon.start()
        try await daemon.ensureDevelopmentCluster()
    }

    func close() async {
        // Stop first: an agent still in session would start replacements
        // for the containers removed below (the restart policy), and leak them.
        await daemon.stop()
        await client.shutdown()
        if let runtime = try? ContainerRuntime(configuration: .init(stateDirectory: directory + "/containers", cgroupParent: cgroupParent, bridge: Self.testBridge)) {
            for state in runtime.list() { try? runtime.delete(state.id, force: true) }
            // A cgroup still busy is tried again later: wait for it (bounded) rather than leave it behind.
            _ = runtime.awaitRemovals(timeout: .seconds(15))
            try? runtime.removeBridge()
            runtime.detach()
        }
        try? FileManager.default.removeItem(atPath: directory)
        // The containers' cgroups are gone with them; the empty parent this
        // test named is ours to remove, in every hierarchy that has it.
        let hierarchies = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []).map { "/sys/fs/cgroup/" + $0 } + ["/sys/fs/cgroup"]
        for hierarchy in hierarchies { rmdir(hierarchy + "/" + cgroupParent) }
    }

    func create(_ spec: Service.Spec) async throws -> Service {
        try await client.call(.post, "/v1/services", json: spec)
    }

    func tasks(_ service: ObjectID) async throws -> [ServiceTask] {
        try await client.call(.get, "/v1/tasks?service=\(service)")
    }

    /// Polls until `condition` holds for the service's tasks.
    func wait(_ service: ObjectID, timeout: Duration = .seconds(30), _ what: String, _ condition: ([ServiceTask]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        var last: [ServiceTask] = []
        while ContinuousClock.now < deadline {
            last = try await tasks(service)
            if condition(last) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for \(what); tasks: \(last.map { "\($0.slot):\($0.status.state)/\($0.desiredState) \($0.status.error)" })")
        throw CancellationError()
    }

    func update(_ service: ObjectID, _ change: (inout Service.Spec) -> Void) async throws {
        let current: Service = try await client.call(.get, "/v1/services/\(service)")
        var spec = current.spec
        change(&spec)
        let _: Service = try await client.call(.post, "/v1/services/\(service)/update", json: ServiceUpdateRequest(version: current.meta.version, spec: spec, force: false))
    }

    var taskContainers: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/containers/containers")) ?? []).filter { $0.hasPrefix("task-") }
    }
}

func running(_ tasks: [ServiceTask]) -> Int {
    tasks.filter { $0.status.state == .running && $0.desiredState == .running }.count
}

func webSpec(_ name: String, replicas: Int) -> Service.Spec {
    var template = TaskTemplate(image: "shoal.local/busybox:latest")
    template.command = ["sleep", "600"]
    template.stopGracePeriodMilliseconds = 200
    template.restartPolicy = .init(condition: .any, delayMilliseconds: 100)
    return Service.Spec(name: name, mode: .replicated(replicas: replicas), task: template)
}

@Suite("Services on one node", .serialized, .enabled(if: DevNode.available, "needs root and busybox-static"))
struct SingleNodeServicesTests {
    @Test("3 replicas run; a killed container is replaced; scale 3 → 10 → 0; global; rm removes the containers")
    func replicatedLifecycle() async throws {
        let node = try await DevNode()
        do {
            let started = ContinuousClock.now
            let service = try await node.create(webSpec("web", replicas: 3))
            try await node.wait(service.id, "3 running") { running($0) == 3 }
            print("services: create → 3/3 running in \(ContinuousClock.now - started)")

            // Kill one task's container: the restart policy replaces it.
            let victim = try #require(try await node.tasks(service.id).first { $0.status.state == .running })
            try node.daemon.agent!.runtime.kill("task-" + victim.id.rawValue)
            try await node.wait(service.id, "the killed task failed and was replaced") { tasks in
                tasks.first { $0.id == victim.id }?.status.state == .failed && running(tasks) == 3
                    && tasks.contains { $0.slot == victim.slot && $0.id != victim.id && $0.status.state == .running }
            }
            let failed = try #require(try await node.tasks(service.id).first { $0.id == victim.id })
            #expect(failed.status.exitCode == 137)
            #expect(failed.status.error.contains("signal 9"))
            #expect(failed.desiredState == .shutdown, "replaced: desired shutdown, as `service ps` shows it")

            try await node.update(service.id) { $0.mode = .replicated(replicas: 10) }
            try await node.wait(service.id, "10 running") { running($0) == 10 }
            try await node.update(service.id) { $0.mode = .replicated(replicas: 0) }
            try await node.wait(service.id, "0 running") { tasks in tasks.allSatisfy { $0.status.state.isTerminal } }

            var global = webSpec("everywhere", replicas: 0)
            global.mode = .global
            let globalService = try await node.create(global)
            try await node.wait(globalService.id, "the global task running") { running($0) == 1 }

            try await node.client.perform(.delete, "/v1/services/\(service.id)")
            try await node.client.perform(.delete, "/v1/services/\(globalService.id)")
            let deadline = ContinuousClock.now + .seconds(20)
            while !node.taskContainers.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
            #expect(node.taskContainers.isEmpty, "containers left after service rm: \(node.taskContainers)")
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("a manager that runs no agent is not a ready node: a service's tasks stay pending and say why; the leader schedules from its kept index")
    func managerWithoutAgent() async throws {
        let node = try await DevNode(runsAgent: false)
        do {
            let manager = try #require(node.daemon.manager)
            let nodes = try await manager.read(stale: true) { $0.nodes }
            #expect(nodes.count == 1 && nodes.allSatisfy { $0.status.state != .ready }, "\(nodes.map(\.status))")
            let service = try await node.create(webSpec("idle", replicas: 2))
            try await node.wait(service.id, "both tasks pending with the reason") { tasks in
                tasks.count == 2 && tasks.allSatisfy { $0.status.state == .pending && $0.status.message.contains("1 node is not ready") }
            }
            // Every pass after the first worked from the change events, not from a rebuild of the whole store.
            let loop = try #require(manager.leaderLoop)
            #expect(loop.passCount > 1 && loop.rebuildCount < loop.passCount, "passes \(loop.passCount), rebuilds \(loop.rebuildCount)")
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("the node's container list shows the agent's task containers beside its own, named and labelled as docker's swarm task containers")
    func taskContainersInContainerList() async throws {
        let node = try await DevNode()
        do {
            let service = try await node.create(webSpec("web", replicas: 2))
            try await node.wait(service.id, "2 running") { running($0) == 2 }
            var request = ContainerCreateRequest(image: "shoal.local/busybox:latest")
            request.name = "own"
            request.command = ["sleep", "600"]
            request.network = "none"
            let created: ContainerCreateReply = try await node.client.call(.post, "/v1/containers", json: request)
            try await node.client.perform(.post, "/v1/containers/own/start")

            let listed: [ContainerSummary] = try await node.client.call(.get, "/v1/containers")
            let tasks = try await node.tasks(service.id).filter { $0.status.state == .running }
            let expected = Set(tasks.map { "web.\($0.slot).\($0.id)" })
            let taskRows = listed.filter { $0.labels?["com.docker.swarm.service.name"] == "web" }
            #expect(Set(taskRows.map(\.name)) == expected, "\(listed.map(\.name))")
            for row in taskRows {
                let task = try #require(tasks.first { row.name.hasSuffix("." + $0.id.rawValue) })
                #expect(row.id == "task-" + task.id.rawValue && row.image == "shoal.local/busybox:latest" && row.state == "running"
                        && row.command == "sleep 600", "\(row)")
                #expect(row.labels?["com.docker.swarm.task.id"] == task.id.rawValue && row.labels?["com.docker.swarm.service.id"] == service.id.rawValue
                        && row.labels?["com.docker.swarm.task.name"] == "web.\(task.slot)", "\(row.labels ?? [:])")
            }
            let own = try #require(listed.first { $0.name == "own" })
            #expect(own.id == created.id && own.labels == nil && own.state == "running")

            let filtered: [ContainerSummary] = try await node.client.call(.get, "/v1/containers?label=com.docker.swarm.service.name%3Dweb")
            #expect(Set(filtered.map(\.name)) == expected)
            let none: [ContainerSummary] = try await node.client.call(.get, "/v1/containers?label=com.docker.swarm.service.name%3Dother")
            #expect(none.isEmpty)
            try await node.client.perform(.delete, "/v1/containers/own?force=true")
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("a task's state only moves forward, pending → assigned → ... → running, each change stamped with its time and a message")
    func taskStatesStamped() async throws {
        let node = try await DevNode()
        do {
            let manager = try #require(node.daemon.manager)
            let events = manager.raft.watch()
            let started = Int64(Date().timeIntervalSince1970 * 1000)
            let service = try await node.create(webSpec("stamped", replicas: 1))
            try await node.wait(service.id, "1 running") { running($0) == 1 }
            var seen: [ServiceTask.Status] = []
            for await event in events {
                guard case .task(let task) = event.object, task.serviceID == service.id else { continue }
                if seen.last.map({ $0 != task.status }) ?? true { seen.append(task.status) }
                if task.status.state == .running { break }
            }
            let states = seen.map(\.state)
            #expect(states.first == .pending && states.contains(.assigned) && states.last == .running, "\(states)")
            #expect(zip(states, states.dropFirst()).allSatisfy { $0 <= $1 }, "never backwards: \(states)")
            // The agent sends a task's latest status: a quick start (an image
            // present, a warm root) can merge its own steps (accepted,
            // preparing, starting) into one report of running.
            #expect(Set(states).count >= 3, "\(states)")
            #expect(states.allSatisfy { [.pending, .assigned, .accepted, .preparing, .starting, .running].contains($0) }, "\(states)")
            let stamps = seen.map(\.timestampMilliseconds)
            #expect(stamps.allSatisfy { $0 >= started - 1_000 } && zip(stamps, stamps.dropFirst()).allSatisfy { $0 <= $1 + 1_000 },
                    "each change stamped when it happened: \(stamps)")
            #expect(seen.allSatisfy { !$0.message.isEmpty }, "each says what happened: \(seen.map(\.message))")
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("shoal dev keeps its state across a restart: the service is still there and its running containers are taken back, none replaced")
    func stateKeptAcrossRestart() async throws {
        let node = try await DevNode()
        do {
            let service = try await node.create(webSpec("kept", replicas: 2))
            try await node.wait(service.id, "2 running") { running($0) == 2 }
            let before = Set(try await node.tasks(service.id).filter { $0.status.state == .running }.map(\.id))
            try await node.restart()
            let services: [Service] = try await node.client.call(.get, "/v1/services")
            #expect(services.map(\.id) == [service.id], "the service survives the restart")
            // The agent re-adopts the containers the monitors kept running: the same tasks report running.
            try await node.wait(service.id, "the same 2 tasks running after the restart") { tasks in
                Set(tasks.filter { $0.status.state == .running && $0.desiredState == .running }.map(\.id)) == before
            }
            try await Task.sleep(for: .seconds(2))
            let tasks = try await node.tasks(service.id)
            #expect(tasks.count == 2 && Set(tasks.map(\.id)) == before, "nothing was replaced: \(tasks.map { "\($0.slot):\($0.status.state) \($0.status.error)" })")
            for id in before {
                #expect(node.daemon.agent?.runtime.container("task-" + id.rawValue)?.state.status == .running, "task \(id)'s container runs on")
            }
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("the stop grace period: a task that ignores SIGTERM is killed once its grace period has passed; one that handles it exits by itself")
    func stopGracePeriod() async throws {
        let node = try await DevNode()
        do {
            var stubborn = webSpec("stubborn", replicas: 1)
            // PID 1 of its namespace: SIGTERM without a handler is ignored.
            stubborn.task.command = ["sh", "-c", "while true; do sleep 0.1; done"]
            stubborn.task.stopGracePeriodMilliseconds = 2_000
            var polite = webSpec("polite", replicas: 1)
            polite.task.command = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
            polite.task.stopGracePeriodMilliseconds = 60_000
            let stubbornService = try await node.create(stubborn)
            let politeService = try await node.create(polite)
            try await node.wait(stubbornService.id, "stubborn running") { running($0) == 1 }
            try await node.wait(politeService.id, "polite running") { running($0) == 1 }

            let stopping = ContinuousClock.now
            try await node.update(stubbornService.id) { $0.mode = .replicated(replicas: 0) }
            try await node.update(politeService.id) { $0.mode = .replicated(replicas: 0) }
            try await node.wait(politeService.id, "polite stopped") { $0.allSatisfy { $0.status.state.isTerminal } }
            let politeTask = try #require(try await node.tasks(politeService.id).first)
            #expect(politeTask.status.state == .shutdown && politeTask.status.exitCode == 0, "SIGTERM first: it exited by itself, long before its 60 s: \(politeTask.status)")
            try await node.wait(stubbornService.id, "stubborn stopped") { $0.allSatisfy { $0.status.state.isTerminal } }
            let elapsed = ContinuousClock.now - stopping
            let stubbornTask = try #require(try await node.tasks(stubbornService.id).first)
            #expect(stubbornTask.status.state == .shutdown && stubbornTask.status.exitCode == 137, "SIGKILL after the grace period: \(stubbornTask.status)")
            #expect(elapsed >= .milliseconds(2_000), "not killed before its 2 s grace period: \(elapsed)")
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("bad specs answer 400 naming the field, and store nothing")
    func badSpecs() async throws {
        let node = try await DevNode(runsAgent: false)
        defer { Task { await node.close() } }
        var negative = webSpec("bad", replicas: -1)
        var response = try await node.client.send(.post, "/v1/services", json: negative)
        #expect(response.status == 400)
        #expect(response.text.contains("replicas"))
        negative = webSpec("bad", replicas: 1)
        negative.task.image = ""
        response = try await node.client.send(.post, "/v1/services", json: negative)
        #expect(response.status == 400)
        #expect(response.text.contains("image"))
        negative = webSpec("bad", replicas: 1)
        negative.task.image = "127.0.0.1:/web:1"
        response = try await node.client.send(.post, "/v1/services", json: negative)
        #expect(response.status == 400)
        #expect(response.text.contains("spec.task.image") && response.text.contains("port"), "\(response.text)")
        negative = webSpec("bad", replicas: 1)
        negative.task.ports = [.init(publishedPort: 70000, targetPort: 80)]
        response = try await node.client.send(.post, "/v1/services", json: negative)
        #expect(response.status == 400)
        #expect(response.text.contains("ports"))
        let services: [Service] = try await node.client.call(.get, "/v1/services")
        #expect(services.isEmpty)
    }
}

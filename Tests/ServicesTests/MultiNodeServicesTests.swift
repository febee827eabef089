import TestSupport
import ClusterState
@testable import Daemon
import Foundation
import Images
import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A manager in this process (no agent: tasks go to workers only) and
/// worker nodes as real `shoal daemon` processes on loopback, each with its
/// own data directory, agent, containers and busybox image; a short
/// heartbeat period so a killed worker is declared down within about a second.
final class WorkerCluster: @unchecked Sendable {
    static let heartbeatPeriod: Duration = .milliseconds(300)

    static var shoalBinary: String? { ShoalBinary.path }

    static var available: Bool { DevNode.available && shoalBinary != nil }

    let root: String
    let token: String
    private(set) var manager: Daemon
    let client: ControlClient
    let initialized: InitReply
    private(set) var workers: [String: Process] = [:]

    /// `listenPort`: the manager's RPC port (0: any), fixed when a test
    /// restarts the manager and its workers must find it again.
    init(listenPort: UInt16 = 0, heartbeatPeriod: Duration = WorkerCluster.heartbeatPeriod) async throws {
        token = UUID().uuidString.prefix(8).lowercased()
        root = NSTemporaryDirectory() + "shoal-multinode-\(token)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var settings = DaemonSettings(dataDirectory: root + "/manager", socketPath: root + "/manager.sock")
        settings.runsAgent = false
        settings.heartbeatPeriod = heartbeatPeriod
        settings.hostname = "manager"
        manager = Daemon(settings: settings)
        try await manager.start()
        initialized = try await manager.initCluster(InitRequest(listenAddress: "127.0.0.1:\(listenPort)", advertiseAddress: nil, apiListenAddress: "127.0.0.1:0"))
        client = try ControlClient(host: "unix://" + settings.socketPath)
    }

    /// More managers in this process (no agent), joined with the manager token.
    private(set) var managers: [String: (daemon: Daemon, client: ControlClient)] = [:]

    func addManager(_ name: String) async throws {
        var settings = DaemonSettings(dataDirectory: "\(root)/\(name)", socketPath: "\(root)/\(name).sock")
        settings.runsAgent = false
        settings.heartbeatPeriod = manager.settings.heartbeatPeriod
        settings.hostname = name
        let daemon = Daemon(settings: settings)
        try await daemon.start()
        let client = try ControlClient(host: "unix://" + settings.socketPath)
        managers[name] = (daemon, client)
        let reply: JoinReply = try await client.call(.post, "/v1/join", json: JoinRequest(token: initialized.managerToken, address: initialized.advertiseAddress,
                                                                                           listenAddress: "127.0.0.1:0", apiListenAddress: "127.0.0.1:0"))
        #expect(reply.role == "manager")
    }

    /// The last lines `name`'s daemon wrote to its log (for failure messages).
    func workerLog(_ name: String, lines: Int = 40) -> String {
        let text = (try? String(contentsOfFile: "\(root)/\(name).log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Stops the manager (its workers lose their only manager).
    func stopManager() async { await manager.stop() }

    /// Starts the manager again from its data directory, as after a crash or an upgrade.
    func startManager() async throws {
        manager = Daemon(settings: manager.settings)
        try await manager.start()
    }

    var cgroupParent: String { "shoal-test-\(token)" }

    /// Each worker's node bridge: its own name and subnet (one runtime per
    /// bridge), removed by ``close()``.
    private(set) var bridges: [String] = []

    /// Starts `shoal daemon` for `name` with the busybox image in its store,
    /// and joins it as a worker listening on `address` (a loopback address
    /// of its own makes it publish ports there, as a host of its own would).
    func addWorker(_ name: String, address: String = "127.0.0.1") async throws {
        let binary = try #require(Self.shoalBinary)
        let data = "\(root)/\(name)"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        _ = try ImageImporter(store: try ContentStore(root: data + "/images")).importRootfs(tarballAt: try #require(DevNode.busyboxTarball),
                                                                                            tag: "shoal.local/busybox:latest")
        let bridge = "shw\(token.prefix(6))\(bridges.count)"
        let subnet = "10.93.\((Int(getpid()) % 40) * 6 + bridges.count).1/24"
        bridges.append(bridge)
        workers[name] = try startBackground(binary, ["daemon", "--data", data, "--host", "unix://\(data).sock", "--hostname", name, "--cgroup-parent", cgroupParent,
                                                     "--bridge", bridge, "--bip", subnet],
                                            logPath: data + ".log")
        let deadline = ContinuousClock.now + .seconds(20)
        while !FileManager.default.fileExists(atPath: data + ".sock") && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let (status, output) = try shoal(["join", "--token", initialized.workerToken, "--listen-addr", "\(address):0", initialized.advertiseAddress],
                                         socket: data + ".sock")
        #expect(status == 0, "join of \(name): \(output)")
    }

    func shoal(_ arguments: [String], socket: String) throws -> (Int32, String) {
        try Self.run(try #require(Self.shoalBinary), arguments, socket: socket)
    }

    /// Runs the CLI against the daemon on `socket`; its exit status and output (stdout and stderr).
    static func run(_ binary: String, _ arguments: [String], socket: String) throws -> (Int32, String) {
        let result = try runToExit(binary, arguments, environment: ["SHOAL_HOST": "unix://\(socket)"], mergingError: true)
        return (result.status, result.output)
    }

    func nodes() async throws -> [NodeView] { try await client.call(.get, "/v1/nodes") }

    /// Waits until every node in `hostnames` is ready (its agent holds a session).
    func waitReady(_ hostnames: [String], timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while Set(try await nodes().filter { $0.status.state == .ready }.map(\.status.hostname)).isSuperset(of: hostnames) == false {
            guard ContinuousClock.now < deadline else { Issue.record("\(hostnames) did not all become ready"); throw CancellationError() }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func nodeID(_ hostname: String) async throws -> ObjectID {
        let node = try #require(try await nodes().first { $0.status.hostname == hostname })
        return try #require(ObjectID(node.id))
    }

    func hostnames() async throws -> [ObjectID: String] {
        var names: [ObjectID: String] = [:]
        for node in try await nodes() { if let id = ObjectID(node.id) { names[id] = node.status.hostname } }
        return names
    }

    func updateNode(_ hostname: String, availability: Node.Availability? = nil, labels: [String: String]? = nil) async throws {
        let id = try await nodeID(hostname)
        let node = try #require(try await nodes().first { $0.id == id.rawValue })
        let _: NodeView = try await client.call(.post, "/v1/nodes/\(id)/update",
                                                json: NodeUpdateRequest(version: node.version, availability: availability, labelAdd: labels))
    }

    /// Hostnames of the nodes running the service's live tasks, one entry per task.
    func placements(_ service: ObjectID) async throws -> [String] {
        let names = try await hostnames()
        let tasks: [ServiceTask] = try await client.call(.get, "/v1/tasks?service=\(service)")
        return tasks.filter { $0.status.state == .running && $0.desiredState == .running }.compactMap { $0.nodeID.flatMap { names[$0] } }.sorted()
    }

    func waitPlacements(_ service: ObjectID, _ what: String, timeout: Duration = .seconds(30), _ condition: ([String]) -> Bool) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        var last: [String] = []
        while ContinuousClock.now < deadline {
            last = try await placements(service)
            if condition(last) { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        let tasks: [ServiceTask] = try await client.call(.get, "/v1/tasks?service=\(service)")
        let names = try await hostnames()
        Issue.record("timed out waiting for \(what); running on \(last); tasks: \(tasks.map { "\($0.slot)@\($0.nodeID.flatMap { names[$0] } ?? "-"):\($0.status.state)/\($0.desiredState) \($0.status.message) \($0.status.error)" })")
        throw CancellationError()
    }

    func kill9(_ name: String) {
        guard let process = workers.removeValue(forKey: name) else { return }
        TestSupport.kill9(process)
    }

    /// Stops the workers this test started (by PID), removes every task container they left, then the manager and the files.
    func close() async {
        terminate(Array(workers.values))
        workers.removeAll()
        let directories = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix("w") && !$0.contains(".") }
        for name in directories {
            guard let runtime = try? ContainerRuntime(configuration: .init(stateDirectory: "\(root)/\(name)/containers", cgroupParent: cgroupParent)) else { continue }
            for state in runtime.list() { try? runtime.delete(state.id, force: true) }
            // A cgroup still busy is tried again later: wait for it (bounded) rather than leave it behind.
            _ = runtime.awaitRemovals(timeout: .seconds(15))
            runtime.detach()
        }
        for (_, added) in managers {
            await added.daemon.stop()
            await added.client.shutdown()
        }
        await manager.stop()
        await client.shutdown()
        // Through the runtime, not `ip link delete`: its ownership file in /run/shoal/bridges goes too.
        for bridge in bridges {
            do {
                try ContainerRuntime.removeBridge(named: bridge)
            } catch {
                Issue.record("removing worker bridge \(bridge): \(error)")
            }
            let lockFile = "/run/shoal/bridges/\(bridge).lock"
            #expect(!FileManager.default.fileExists(atPath: lockFile), "\(lockFile) left behind")
        }
        try? FileManager.default.removeItem(atPath: root)
        let hierarchies = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []).map { "/sys/fs/cgroup/" + $0 } + ["/sys/fs/cgroup"]
        for hierarchy in hierarchies { rmdir(hierarchy + "/" + cgroupParent) }
    }
}

@Suite("Services on several worker processes", .serialized, .enabled(if: WorkerCluster.available, "needs root, busybox-static and the shoal binary"))
struct MultiNodeServicesTests {
    @Test("spread and constraints are respected; drain moves a node's tasks; kill -9 of a worker reschedules its tasks after the heartbeat deadline")
    func drainAndKill() async throws {
        let cluster = try await WorkerCluster()
        do {
            for name in ["w1", "w2", "w3"] { try await cluster.addWorker(name) }
            try await cluster.waitReady(["w1", "w2", "w3"])
            // The manager runs no agent here: drained, as a Docker manager that should run no tasks.
            try await cluster.updateNode("manager", availability: .drain)
            try await cluster.updateNode("w1", labels: ["zone": "a"])
            try await cluster.updateNode("w2", labels: ["zone": "b"])
            try await cluster.updateNode("w3", labels: ["zone": "b"])

            // Spread over zones: 4 replicas, 2 in zone a (w1), 2 in zone b (w2, w3).
            var spread = webSpec("spread", replicas: 4)
            spread.task.placement.preferences = ["spread=node.labels.zone"]
            let spreadService: Service = try await cluster.client.call(.post, "/v1/services", json: spread)
            let spreadPlacement = try await cluster.waitPlacements(spreadService.id, "4 spread replicas") { $0.count == 4 }
            #expect(spreadPlacement.filter { $0 == "w1" }.count == 2, "zone a holds half: \(spreadPlacement)")
            // Constrained to zone b: never on w1.
            var pinned = webSpec("pinned", replicas: 2)
            pinned.task.placement.constraints = ["node.labels.zone==b"]
            let pinnedService: Service = try await cluster.client.call(.post, "/v1/services", json: pinned)
            let pinnedPlacement = try await cluster.waitPlacements(pinnedService.id, "2 pinned replicas") { $0.count == 2 }
            #expect(!pinnedPlacement.contains("w1"), "constraint node.labels.zone==b: \(pinnedPlacement)")

            // Drain w2: its tasks move (the pinned ones to w3, the only other zone b node).
            try await cluster.updateNode("w2", availability: .drain)
            let afterDrain = try await cluster.waitPlacements(pinnedService.id, "pinned tasks off w2") { $0 == ["w3", "w3"] }
            #expect(afterDrain == ["w3", "w3"])
            let spreadAfterDrain = try await cluster.waitPlacements(spreadService.id, "spread tasks off w2") { $0.count == 4 && !$0.contains("w2") }
            #expect(!spreadAfterDrain.contains("w2"))
            try await cluster.updateNode("w2", availability: .active)

            // kill -9 w3: once its heartbeats stop for the deadline, it is down and its tasks run elsewhere.
            let killed = ContinuousClock.now
            cluster.kill9("w3")
            let rescheduled = try await cluster.waitPlacements(pinnedService.id, "pinned tasks rescheduled from the killed w3") { $0 == ["w2", "w2"] }
            let elapsed = ContinuousClock.now - killed
            print("services: kill -9 of a worker → its tasks running elsewhere in \(elapsed) (heartbeat period \(WorkerCluster.heartbeatPeriod))")
            #expect(rescheduled == ["w2", "w2"])
            let w3 = try await cluster.nodes().first { $0.status.hostname == "w3" }
            #expect(w3?.status.state == .down)
            let spreadAfterKill = try await cluster.waitPlacements(spreadService.id, "spread tasks off w3") { $0.count == 4 && !$0.contains("w3") }
            #expect(!spreadAfterKill.contains("w3"))
        } catch {
            await cluster.close()
            throw error
        }
        await cluster.close()
    }
    @Test("service logs on the manager merges the workers' task logs (prefixes, --tail, --timestamps, --follow); mode=host ports publish on each worker's own address")
    func logsAndPortsAcrossWorkers() async throws {
        let cluster = try await WorkerCluster()
        do {
            // Each worker on a loopback address of its own, as separate hosts.
            for (index, name) in ["w1", "w2", "w3"].enumerated() { try await cluster.addWorker(name, address: "127.0.0.\(index + 2)") }
            try await cluster.waitReady(["w1", "w2", "w3"])
            try await cluster.updateNode("manager", availability: .drain)

            // One fixed published port: one task per node, each answering on its node's address.
            let port = Int(try freePort())
            let web: Service = try await cluster.client.call(.post, "/v1/services", json: httpdSpec("web", replicas: 3, published: port))
            let placed = try await cluster.waitPlacements(web.id, "3 web replicas, one per worker") { $0.count == 3 }
            #expect(placed == ["w1", "w2", "w3"])
            let names = try await cluster.hostnames()
            let webTasks: [ServiceTask] = try await cluster.client.call(.get, "/v1/tasks?service=\(web.id)")
            for task in webTasks where task.status.state == .running {
                let worker = try #require(task.nodeID.flatMap { names[$0] })
                let address = "127.0.0.\(Int(worker.dropFirst())! + 1)"
                #expect(try await fetch(address, port) == "web slot \(task.slot)", "\(worker) at \(address):\(port)")
            }

            // Three lines at once, then a tick every 300 ms, on both streams.
            var talker = webSpec("talker", replicas: 3)
            talker.task.placement.maxReplicasPerNode = 1
            talker.task.command = ["sh", "-c", "for i in 1 2 3; do echo \"slot $SHOAL_TASK_SLOT line $i\"; done; echo \"slot $SHOAL_TASK_SLOT oops\" >&2; "
                                   + "while true; do echo \"slot $SHOAL_TASK_SLOT tick\"; sleep 0.3; done"]
            let service: Service = try await cluster.client.call(.post, "/v1/services", json: talker)
            _ = try await cluster.waitPlacements(service.id, "3 talkers") { $0.count == 3 }
            let tasks: [ServiceTask] = try await cluster.client.call(.get, "/v1/tasks?service=\(service.id)")
            var prefixes: [Int: String] = [:]
            for task in tasks where task.status.state == .running {
                prefixes[task.slot] = "talker.\(task.slot).\(task.id.rawValue.prefix(12))@\(names[task.nodeID!]!) | "
            }
            #expect(prefixes.count == 3)
            let socket = cluster.root + "/manager.sock"
            let binary = try #require(WorkerCluster.shoalBinary)

            var (status, output) = try WorkerCluster.run(binary, ["service", "logs", "talker"], socket: socket)
            #expect(status == 0, "\(output)")
            for (slot, prefix) in prefixes {
                for number in 1...3 { #expect(output.contains(prefix + "slot \(slot) line \(number)\n"), "slot \(slot) line \(number) in: \(output)") }
                #expect(output.contains(prefix + "slot \(slot) oops\n"), "stderr lines too")
            }

            (status, output) = try WorkerCluster.run(binary, ["service", "logs", "--tail", "1", "--timestamps", "talker"], socket: socket)
            #expect(status == 0, "\(output)")
            let lines = output.split(separator: "\n")
            #expect(lines.count == 3, "one line per task with --tail 1: \(output)")
            for prefix in prefixes.values {
                #expect(lines.filter { $0.contains(prefix) }.count == 1, "\(prefix) in \(output)")
            }
            #expect(lines.allSatisfy { $0.hasPrefix("20") && $0.contains("Z talker.") }, "timestamps first: \(output)")

            // --follow: new lines of every worker's task arrive; the CLI runs until stopped.
            let follower = try LineCollector(binary, ["service", "logs", "--follow", "--tail", "0", "talker"], socket: socket)
            let seen = follower.wait(timeout: .seconds(30)) { text in prefixes.values.allSatisfy { text.contains($0 + "slot") } }
            follower.stop()
            #expect(seen, "followed lines from every task: \(follower.text)")
            #expect(!follower.text.contains("line 1"), "--tail 0 starts with new lines: \(follower.text)")
        } catch {
            await cluster.close()
            throw error
        }
        await cluster.close()
    }
}

extension MultiNodeServicesTests {
    @Test("a worker keeps its tasks running while its only manager is down, and reports to it again once it is back: no task is replaced")
    func managerOutage() async throws {
        let cluster = try await WorkerCluster(listenPort: try freePort(), heartbeatPeriod: .seconds(1))
        do {
            try await cluster.addWorker("w1")
            try await cluster.waitReady(["w1"])
            try await cluster.updateNode("manager", availability: .drain)
            let w1 = try await cluster.nodes().first { $0.status.hostname == "w1" }
            #expect((w1?.status.resources.nanoCPUs ?? 0) > 0 && (w1?.status.resources.memoryBytes ?? 0) > 0, "the agent reports its node's resources: \(String(describing: w1?.status))")

            let service: Service = try await cluster.client.call(.post, "/v1/services", json: webSpec("steady", replicas: 2))
            _ = try await cluster.waitPlacements(service.id, "2 tasks on w1") { $0 == ["w1", "w1"] }
            let before: [ServiceTask] = try await cluster.client.call(.get, "/v1/tasks?service=\(service.id)")
            let ids = Set(before.filter { $0.status.state == .running }.map(\.id))
            #expect(ids.count == 2)

            // No manager for several heartbeat deadlines: the worker's containers keep running.
            await cluster.stopManager()
            try await Task.sleep(for: .seconds(4))
            let (status, output) = try cluster.shoal(["container", "ps", "--format", "json"], socket: cluster.root + "/w1.sock")
            #expect(status == 0, "\(output)")
            let listed = try JSONDecoder().decode([ContainerSummary].self, from: Data(output.utf8))
            for id in ids {
                #expect(listed.contains { $0.id == "task-" + id.rawValue && $0.state == "running" }, "task \(id) still running with no manager: \(listed.map { "\($0.name) \($0.state)" })")
            }

            // The manager comes back: the agent finds it, its tasks report running, and none is replaced.
            try await cluster.startManager()
            let back = ContinuousClock.now + .seconds(30)
            var tasks: [ServiceTask] = []
            var ready = false
            while ContinuousClock.now < back {
                ready = (try? await cluster.nodes().contains { $0.status.hostname == "w1" && $0.status.state == .ready }) ?? false
                tasks = (try? await cluster.client.call(.get, "/v1/tasks?service=\(service.id)")) ?? []
                if ready && Set(tasks.filter { $0.status.state == .running && $0.desiredState == .running }.map(\.id)) == ids { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(ready, "w1 is ready again")
            #expect(Set(tasks.filter { $0.status.state == .running && $0.desiredState == .running }.map(\.id)) == ids,
                    "the same tasks run: \(tasks.map { "\($0.slot):\($0.status.state)/\($0.desiredState) \($0.status.error)" })")
            #expect(tasks.count == 2, "no replacement was created: \(tasks.map { "\($0.slot):\($0.status.state)" })")
        } catch {
            await cluster.close()
            throw error
        }
        await cluster.close()
    }
}

extension MultiNodeServicesTests {
    @Test("three managers: the leader stops; the worker's agent follows the new leader, its tasks keep running, and new assignments reach it")
    func agentFollowsLeaderChange() async throws {
        let cluster = try await WorkerCluster(heartbeatPeriod: .seconds(1))
        do {
            try await cluster.addManager("m2")
            try await cluster.addManager("m3")
            try await cluster.addWorker("w1")
            try await cluster.waitReady(["w1"])
            #expect(cluster.manager.raftStatus?.role == .leader, "the first manager leads: \(String(describing: cluster.manager.raftStatus))")
            let service: Service = try await cluster.client.call(.post, "/v1/services", json: webSpec("steady", replicas: 2))
            _ = try await cluster.waitPlacements(service.id, "2 tasks on w1") { $0 == ["w1", "w1"] }
            let before: [ServiceTask] = try await cluster.client.call(.get, "/v1/tasks?service=\(service.id)")
            let ids = Set(before.filter { $0.status.state == .running }.map(\.id))

            // The worker learns every manager's address (from any of them, each second).
            let learned = ContinuousClock.now + .seconds(30)
            var known: [String] = []
            while ContinuousClock.now < learned {
                let status = try runToExit("/usr/bin/curl", ["-s", "--unix-socket", cluster.root + "/w1.sock", "http://w1/v1/status"]).output
                known = (try? JSONDecoder().decode(DaemonStatus.self, from: Data(status.utf8)))?.managerAddresses ?? []
                if known.count == 3 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(known.count == 3, "w1 knows the 3 managers: \(known)")

            // The leader goes away; m2 or m3 takes over and the agent finds it.
            await cluster.stopManager()
            let client = try #require(cluster.managers["m2"]?.client)
            let settled = ContinuousClock.now + .seconds(60)
            var tasks: [ServiceTask] = []
            var w1Ready = false
            while ContinuousClock.now < settled {
                let nodes: [NodeView] = (try? await client.call(.get, "/v1/nodes")) ?? []
                w1Ready = nodes.contains { $0.status.hostname == "w1" && $0.status.state == .ready }
                tasks = (try? await client.call(.get, "/v1/tasks?service=\(service.id)")) ?? []
                if w1Ready && Set(tasks.filter { $0.status.state == .running && $0.desiredState == .running }.map(\.id)) == ids { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(w1Ready, "w1 ready under the new leader")
            #expect(Set(tasks.filter { $0.status.state == .running && $0.desiredState == .running }.map(\.id)) == ids && tasks.count == 2,
                    "the same tasks run, none replaced: \(tasks.map { "\($0.slot):\($0.status.state)/\($0.desiredState) \($0.status.error)" })")

            // A new assignment from the new leader reaches the agent.
            let current: Service = try await client.call(.get, "/v1/services/\(service.id)")
            var spec = current.spec
            spec.mode = .replicated(replicas: 3)
            let _: Service = try await client.call(.post, "/v1/services/\(service.id)/update", json: ServiceUpdateRequest(version: current.meta.version, spec: spec, force: false))
            let scaled = ContinuousClock.now + .seconds(60)
            var runningNow = 0
            while ContinuousClock.now < scaled {
                tasks = (try? await client.call(.get, "/v1/tasks?service=\(service.id)")) ?? []
                runningNow = tasks.filter { $0.status.state == .running && $0.desiredState == .running }.count
                if runningNow == 3 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(runningNow == 3, "the third task runs on w1: \(tasks.map { "\($0.slot):\($0.status.state) \($0.status.message) \($0.status.error)" })\nw1's status: \((try? cluster.shoal(["node", "ls"], socket: cluster.root + "/m2.sock").1) ?? "-") \((try? runToExit("/usr/bin/curl", ["-s", "--unix-socket", cluster.root + "/w1.sock", "http://w1/v1/status"]).output) ?? "-")\nw1's log:\n\(cluster.workerLog("w1"))")
        } catch {
            await cluster.close()
            throw error
        }
        await cluster.close()
    }
}

/// Runs the CLI in the background and gathers what it prints, for commands
/// that stream until stopped (`logs --follow`).
final class LineCollector: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var collected = Data()

    init(_ binary: String, _ arguments: [String], socket: String) throws {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SHOAL_HOST"] = "unix://\(socket)"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.collected.append(data) }
        }
        try process.run()
    }

    var text: String { lock.withLock { String(decoding: collected, as: UTF8.self) } }

    /// Polls until `condition` holds for the output so far, or `timeout`.
    func wait(timeout: Duration, _ condition: (String) -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(text) { return true }
            usleep(50_000)
        }
        return condition(text)
    }

    /// Waits for the process to exit by itself; its status, or nil after `timeout`.
    func waitExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { usleep(50_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Ends the process we started (by its PID). SIGKILL: a child of the
    /// test process inherits its blocked signals, SIGTERM among them.
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

import TestSupport
import Daemon
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real `shoal` binary: daemons as processes, the CLI as processes.
@Suite("shoal daemon processes", .serialized, .timeLimit(.minutes(2)))
struct ProcessTests {
    static var shoalBinary: String? { ShoalBinary.path }

    final class Processes: @unchecked Sendable {
        let root: String
        let binary: String
        var daemons: [String: Process] = [:]

        init(binary: String) throws {
            self.binary = binary
            root = NSTemporaryDirectory() + "shoal-process-tests-" + UUID().uuidString.prefix(8)
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        }

        func startDaemon(_ name: String, _ flags: [String] = []) throws {
            daemons[name] = try startBackground(binary, ["daemon", "--data", "\(root)/\(name)", "--host", "unix://\(root)/\(name).sock"] + flags,
                                                logPath: "\(root)/\(name).log")
        }

        /// Runs the CLI against `name`'s socket; returns exit status and stdout.
        func shoal(_ name: String, _ arguments: [String]) throws -> (Int32, String) {
            let result = try runToExit(binary, arguments, environment: ["SHOAL_HOST": "unix://\(root)/\(name).sock"], mergingError: true)
            return (result.status, result.output)
        }

        func waitForSocket(_ name: String) async throws {
            try await eventually("\(name)'s socket") {
                (try? shoal(name, ["node", "ls"]))?.1.contains("not a manager") == true ? true : nil
            }
        }

        func kill9(_ name: String) {
            guard let process = daemons.removeValue(forKey: name) else { return }
            TestSupport.kill9(process)
        }

        /// Ends only the processes this test started, by PID.
        func stopAll() {
            terminate(Array(daemons.values))
            daemons.removeAll()
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// Starts `names` as daemons, makes the first the founding manager and
    /// joins the others as managers.
    private static func formCluster(_ processes: Processes, _ names: [String]) async throws -> InitReply {
        for name in names { try processes.startDaemon(name) }
        for name in names { try await processes.waitForSocket(name) }
        let (initStatus, initOutput) = try processes.shoal(names[0], ["init", "--listen-addr", "127.0.0.1:0", "--api-listen-addr", "127.0.0.1:0", "--format", "json"])
        #expect(initStatus == 0, "\(initOutput)")
        let initialized = try JSONDecoder().decode(InitReply.self, from: Data(initOutput.utf8))
        for name in names.dropFirst() {
            let (status, output) = try processes.shoal(name, ["join", "--token", initialized.managerToken, "--listen-addr", "127.0.0.1:0",
                                                              "--api-listen-addr", "127.0.0.1:0", initialized.advertiseAddress])
            #expect(status == 0, "\(output)")
            #expect(output.contains("as a manager"))
        }
        return initialized
    }

    /// The daemon that is the Raft leader now.
    private static func leaderName(_ processes: Processes, among names: [String]) throws -> String {
        for name in names {
            let (_, statusJSON) = try processes.shoal(name, ["cluster", "inspect", "--format", "json"])
            if let view = try? JSONDecoder().decode(ClusterView.self, from: Data(statusJSON.utf8)), view.raft.raftID == view.raft.leader {
                return name
            }
        }
        throw ProcessTestFailure(description: "no daemon of \(names) says it is the leader")
    }

    /// Clients writing configs back to back through the control sockets of
    /// `targets` (followers forward to the leader), one after another, each
    /// write to the next target; records the names whose write was acknowledged.
    final class WriteStream: @unchecked Sendable {
        private let lock = NSLock()
        private var acknowledged: [String] = []
        private var failures = 0
        private var stopped = false
        private var task: Task<Void, Never>?

        var acknowledgedNames: [String] { lock.withLock { acknowledged } }
        var failureCount: Int { lock.withLock { failures } }

        func start(_ processes: Processes, targets: [String]) throws {
            let clients = try targets.map { try ControlClient(host: "unix://\(processes.root)/\($0).sock", timeout: .seconds(5)) }
            task = Task {
                var sequence = 0
                while !self.lock.withLock({ self.stopped }) {
                    let name = "stream-\(sequence)"
                    let client = clients[sequence % clients.count]
                    sequence += 1
                    let response = try? await client.send(.post, "/v1/configs", json: ["name": name, "data": Data("value \(name)".utf8).base64EncodedString()])
                    self.lock.withLock {
                        if let response, response.error == nil { self.acknowledged.append(name) } else { self.failures += 1 }
                    }
                    if response == nil || response?.error != nil { try? await Task.sleep(for: .milliseconds(20)) }
                }
            }
        }

        /// Writes until `count` more writes are acknowledged (or `timeout`).
        func waitForMore(_ count: Int, timeout: Duration = .seconds(30)) async throws {
            let target = acknowledgedNames.count + count
            try await eventually("\(count) more acknowledged writes", timeout: timeout) { acknowledgedNames.count >= target ? true : nil }
        }

        func stop() async {
            lock.withLock { stopped = true }
            await task?.value
        }
    }

    /// Every acknowledged write is in the state each of `names` serves (a linearizable read).
    private static func expectAllPresent(_ names: [String], in processes: Processes, on daemons: [String]) async throws {
        for daemon in daemons {
            let client = try ControlClient(host: "unix://\(processes.root)/\(daemon).sock", timeout: .seconds(10))
            let configs: [ConfigView] = try await client.call(.get, "/v1/configs")
            let stored = Set(configs.map(\.name))
            let missing = names.filter { !stored.contains($0) }
            #expect(missing.isEmpty, "\(daemon) lost \(missing.count) acknowledged writes: \(missing.prefix(10))")
        }
    }

    @Test("shoal daemon and shoal dev refuse a flag they do not know instead of starting with defaults")
    func unknownFlagsAreRefused() throws {
        guard let binary = Self.shoalBinary else {
            Issue.record("the shoal binary is not built next to the tests")
            return
        }
        let processes = try Processes(binary: binary)
        defer { processes.stopAll() }
        for command in [["daemon"], ["dev"]] {
            let (status, output) = try processes.shoal("none", command + ["--socket", "\(processes.root)/misspelt.sock", "--data", "\(processes.root)/data"])
            #expect(status == 2, "\(command): \(output)")
            #expect(output.contains("unknown flag --socket"), "\(output)")
            #expect(output.contains("--host"), "the message lists the flags that exist: \(output)")
            #expect(!FileManager.default.fileExists(atPath: "\(processes.root)/data"), "nothing is created before the flags are checked")
        }
    }

    @Test("shoal daemon ×3, shoal init, shoal join, shoal node ls; kill -9 the leader under a stream of writes and the others carry on, losing no acknowledged write")
    func realBinary() async throws {
        guard let binary = Self.shoalBinary else {
            Issue.record("the shoal binary is not built next to the tests; run `swift build --build-tests` first")
            return
        }
        let processes = try Processes(binary: binary)
        defer { processes.stopAll() }
        let names = ["a", "b", "c"]
        _ = try await Self.formCluster(processes, names)
        let (lsStatus, table) = try processes.shoal("b", ["node", "ls"])
        #expect(lsStatus == 0, "\(table)")
        #expect(table.contains("MANAGER STATUS"))
        #expect(table.components(separatedBy: "Leader").count == 2, "\(table)")
        #expect(table.split(separator: "\n").count == 4, "\(table)")

        let leaderName = try Self.leaderName(processes, among: names)
        let survivors = names.filter { $0 != leaderName }
        let stream = WriteStream()
        try stream.start(processes, targets: survivors)
        try await stream.waitForMore(10)
        processes.kill9(leaderName)
        try await eventually("a new leader after kill -9", timeout: .seconds(30)) {
            let (status, output) = try processes.shoal(survivors[0], ["node", "ls"])
            return status == 0 && output.contains("Leader") && output.contains("Unreachable") ? true : nil
        }
        try await stream.waitForMore(10)
        await stream.stop()
        try await Self.expectAllPresent(stream.acknowledgedNames, in: processes, on: survivors)

        let (rotateStatus, rotated) = try processes.shoal(survivors[0], ["join-token", "worker", "--rotate", "-q"])
        #expect(rotateStatus == 0, "\(rotated)")
        #expect(rotated.contains("SHOAL-1-"))
    }

    @Test("five managers: kill -9 the leader under a stream of writes, then a follower; four then three carry on, losing no acknowledged write")
    func fiveManagers() async throws {
        guard let binary = Self.shoalBinary else {
            Issue.record("the shoal binary is not built next to the tests; run `swift build --build-tests` first")
            return
        }
        let processes = try Processes(binary: binary)
        defer { processes.stopAll() }
        let names = ["a", "b", "c", "d", "e"]
        _ = try await Self.formCluster(processes, names)
        try await eventually("five managers in node ls") {
            let (status, table) = try processes.shoal("e", ["node", "ls"])
            return status == 0 && table.split(separator: "\n").count == 6 && table.components(separatedBy: "Reachable").count == 5 ? true : nil
        }

        let leaderName = try Self.leaderName(processes, among: names)
        var survivors = names.filter { $0 != leaderName }
        let stream = WriteStream()
        try stream.start(processes, targets: Array(survivors.suffix(3)))
        try await stream.waitForMore(10)
        processes.kill9(leaderName)
        try await stream.waitForMore(10)
        // A second failure: three of five is still a quorum.
        let follower = survivors.removeFirst()
        processes.kill9(follower)
        try await stream.waitForMore(10)
        await stream.stop()
        try await Self.expectAllPresent(stream.acknowledgedNames, in: processes, on: survivors)
        try await eventually("node ls showing both dead managers unreachable") {
            let (status, table) = try processes.shoal(survivors[0], ["node", "ls"])
            return status == 0 && table.components(separatedBy: "Unreachable").count == 3 && table.contains("Leader") ? true : nil
        }
    }
}

struct ProcessTestFailure: Error, CustomStringConvertible {
    var description: String
}

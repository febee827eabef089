import Daemon
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real `shoal` binary: daemons as processes, the CLI as processes.
@Suite("shoal daemon processes", .serialized, .timeLimit(.minutes(2)))
struct ProcessTests {
    /// `shoal` next to the test bundle in the build directory.
    static var shoalBinary: String? {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("shoal").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    final class Processes: @unchecked Sendable {
        let root: String
        let binary: String
        var daemons: [String: Process] = [:]

        init(binary: String) throws {
            self.binary = binary
            root = NSTemporaryDirectory() + "shoal-process-tests-" + UUID().uuidString.prefix(8)
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        }

        func startDaemon(_ name: String) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["daemon", "--data", "\(root)/\(name)", "--host", "unix://\(root)/\(name).sock"]
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            let log = "\(root)/\(name).log"
            FileManager.default.createFile(atPath: log, contents: nil)
            process.standardError = FileHandle(forWritingAtPath: log)
            try process.run()
            daemons[name] = process
        }

        /// Runs the CLI against `name`'s socket; returns exit status and stdout.
        func shoal(_ name: String, _ arguments: [String]) throws -> (Int32, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
            var environment = ProcessInfo.processInfo.environment
            environment["SHOAL_HOST"] = "unix://\(root)/\(name).sock"
            process.environment = environment
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }

        func waitForSocket(_ name: String) async throws {
            try await eventually("\(name)'s socket") {
                (try? shoal(name, ["node", "ls"]))?.1.contains("not a manager") == true ? true : nil
            }
        }

        func kill9(_ name: String) {
            guard let process = daemons.removeValue(forKey: name) else { return }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        /// Ends only the processes this test started, by PID.
        func stopAll() {
            for (_, process) in daemons where process.isRunning {
                kill(process.processIdentifier, SIGTERM)
            }
            let deadline = Date().addingTimeInterval(5)
            for (_, process) in daemons {
                while process.isRunning && Date() < deadline { usleep(20_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
            }
            daemons.removeAll()
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    @Test("shoal daemon ×3, shoal init, shoal join, shoal node ls; kill -9 the leader and the others carry on")
    func realBinary() async throws {
        guard let binary = Self.shoalBinary else {
            Issue.record("the shoal binary is not built next to the tests; run `swift build --build-tests` first")
            return
        }
        let processes = try Processes(binary: binary)
        defer { processes.stopAll() }
        for name in ["a", "b", "c"] { try processes.startDaemon(name) }
        for name in ["a", "b", "c"] { try await processes.waitForSocket(name) }

        let (initStatus, initOutput) = try processes.shoal("a", ["init", "--listen-addr", "127.0.0.1:0", "--api-listen-addr", "127.0.0.1:0", "--format", "json"])
        #expect(initStatus == 0, "\(initOutput)")
        let initialized = try JSONDecoder().decode(InitReply.self, from: Data(initOutput.utf8))
        for name in ["b", "c"] {
            let (status, output) = try processes.shoal(name, ["join", "--token", initialized.managerToken, "--listen-addr", "127.0.0.1:0",
                                                              "--api-listen-addr", "127.0.0.1:0", initialized.advertiseAddress])
            #expect(status == 0, "\(output)")
            #expect(output.contains("as a manager"))
        }
        let (lsStatus, table) = try processes.shoal("b", ["node", "ls"])
        #expect(lsStatus == 0, "\(table)")
        #expect(table.contains("MANAGER STATUS"))
        #expect(table.components(separatedBy: "Leader").count == 2, "\(table)")
        #expect(table.split(separator: "\n").count == 4, "\(table)")

        // Find the leader process and kill -9 it.
        let (_, clusterJSON) = try processes.shoal("b", ["cluster", "inspect", "--format", "json"])
        let view = try JSONDecoder().decode(ClusterView.self, from: Data(clusterJSON.utf8))
        let leaderNode = try #require(view.leaderNodeID)
        var leaderName = "a"
        for name in ["a", "b", "c"] {
            let (_, statusJSON) = try processes.shoal(name, ["cluster", "inspect", "--format", "json"])
            if let mine = try? JSONDecoder().decode(ClusterView.self, from: Data(statusJSON.utf8)), mine.raft.raftID == mine.raft.leader, mine.leaderNodeID == leaderNode {
                leaderName = name
            }
        }
        processes.kill9(leaderName)
        let survivor = ["a", "b", "c"].first { $0 != leaderName }!
        try await eventually("a new leader after kill -9", timeout: .seconds(30)) {
            let (status, output) = try processes.shoal(survivor, ["node", "ls"])
            return status == 0 && output.contains("Leader") && output.contains("Unreachable") ? true : nil
        }
        let (rotateStatus, rotated) = try processes.shoal(survivor, ["join-token", "worker", "--rotate", "-q"])
        #expect(rotateStatus == 0, "\(rotated)")
        #expect(rotated.contains("SHOAL-1-"))
    }
}

import Daemon
import Foundation
import HTTP

/// Three `shoal daemon` processes joined as managers; clients write configs
/// (256-byte values) through the control API over mutual TLS.
final class ShoalClusterTarget: ClusterTarget, @unchecked Sendable {
    let name = "shoal"
    let leaderHint = 0
    private let processes: BenchProcesses
    private let binary: String
    private let apiPorts: [UInt16]
    private var members: [String] { ["m0", "m1", "m2"] }
    private var clientDirectory: String { processes.directory + "/client" }

    private init(processes: BenchProcesses, binary: String, apiPorts: [UInt16]) {
        self.processes = processes
        self.binary = binary
        self.apiPorts = apiPorts
    }

    /// The `shoal` executable next to this benchmark in the build directory.
    static func shoalBinary() throws -> String {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidate = directory.appendingPathComponent("shoal").path
        guard FileManager.default.isExecutableFile(atPath: candidate) else {
            throw BenchmarkError(description: "no shoal executable next to shoal-bench in \(directory.path); build it with `swift build -c release --product shoal`")
        }
        return candidate
    }

    static func start() async throws -> ShoalClusterTarget {
        let processes = try BenchProcesses(label: "shoal-cluster")
        let binary = try shoalBinary()
        let raftPorts = (0..<3).map { _ in BenchProcesses.freePort() }
        let apiPorts = (0..<3).map { _ in BenchProcesses.freePort() }
        let target = ShoalClusterTarget(processes: processes, binary: binary, apiPorts: apiPorts)
        do {
            for (position, member) in target.members.enumerated() {
                try processes.start(member, binary, ["daemon", "--data", "\(processes.directory)/\(member)", "--host", target.socket(member)])
                _ = try await eventually("\(member)'s control socket") { () -> Bool? in
                    try target.shoal(member, ["node", "ls"]).output.contains("not a manager") ? true : nil
                }
                let addresses = ["--listen-addr", "127.0.0.1:\(raftPorts[position])", "--advertise-addr", "127.0.0.1:\(raftPorts[position])",
                                 "--api-listen-addr", "127.0.0.1:\(apiPorts[position])"]
                if position == 0 {
                    try target.check(target.shoal(member, ["init"] + addresses), "shoal init")
                } else {
                    let token = try target.check(target.shoal("m0", ["join-token", "manager", "-q"]), "shoal join-token").trimmingCharacters(in: .whitespacesAndNewlines)
                    try target.check(target.shoal(member, ["join", "--token", token] + addresses + ["127.0.0.1:\(raftPorts[0])"]), "shoal join")
                }
            }
            try target.check(target.shoal("m0", ["ca", "issue-client", "--out", target.clientDirectory]), "shoal ca issue-client")
            _ = try await eventually("three voters") { () -> Bool? in
                let status: DaemonStatus = try await ControlClient(host: target.socket("m0")).call(.get, "/v1/status")
                return status.raft?.voters.count == 3 ? true : nil
            }
        } catch {
            target.stop()
            throw error
        }
        return target
    }

    private func socket(_ member: String) -> String { "unix://\(processes.directory)/\(member).sock" }

    private func shoal(_ member: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try processes.run(binary, arguments, environment: ["SHOAL_HOST": socket(member)])
    }

    @discardableResult
    private func check(_ result: (status: Int32, output: String), _ what: String) throws -> String {
        guard result.status == 0 else { throw BenchmarkError(description: "\(what) failed (\(result.status)): \(result.output)") }
        return result.output
    }

    func writer(member: Int) throws -> ClusterWriter {
        Writer(client: try ControlClient(host: "https://127.0.0.1:\(apiPorts[member])", tlsDirectory: clientDirectory, timeout: .seconds(5)))
    }

    private struct Writer: ClusterWriter {
        let client: ControlClient
        func put(key: String, value: [UInt8]) async throws {
            let response = try await client.send(.post, "/v1/configs", json: ["name": key, "data": Data(value).base64EncodedString()])
            if let error = response.error { throw error }
        }
    }

    func leader() async throws -> Int {
        try await eventually("a Shoal leader") { () -> Int? in
            for (position, member) in members.enumerated() {
                guard let status: DaemonStatus = try? await ControlClient(host: socket(member), timeout: .seconds(1)).call(.get, "/v1/status") else { continue }
                if status.raft?.role == "leader" { return position }
            }
            return nil
        }
    }

    func kill(member: Int) { processes.kill9(members[member]) }

    var memberPIDs: [Int32] { members.compactMap { processes.pid($0) } }

    func stop() { processes.stopAll() }
}

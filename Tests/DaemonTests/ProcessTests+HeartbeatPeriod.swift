import Daemon
import Foundation
import TestSupport
import Testing

extension ProcessTests {
    @Test("shoal daemon --heartbeat-period sets how often workers report (5 s by default), shown by cluster inspect; bad periods are refused")
    func heartbeatPeriodFlag() async throws {
        let binary = try #require(Self.shoalBinary)
        for (command, value) in [("daemon", "50ms"), ("daemon", "soon"), ("dev", "0s")] {
            let refused = try runToExit(binary, [command, "--heartbeat-period", value, "--data", "/nonexistent/shoal-flag-test", "--host", "unix:///nonexistent/s.sock"])
            #expect(refused.status == 2, "\(command) \(value): \(refused)")
            #expect(refused.error.contains("--heartbeat-period '\(value)' must be a duration of at least 100ms, like 5s"), "\(refused.error)")
        }

        let processes = try Processes(binary: binary)
        defer { processes.stopAll() }
        try processes.startDaemon("set", ["--heartbeat-period", "1500ms"])
        try processes.startDaemon("default")
        for name in ["set", "default"] {
            try await processes.waitForSocket(name)
            let (status, output) = try processes.shoal(name, ["init", "--listen-addr", "127.0.0.1:0", "--api-listen-addr", "127.0.0.1:0"])
            #expect(status == 0, "\(output)")
        }
        func period(_ name: String) throws -> Int64? {
            let (_, output) = try processes.shoal(name, ["cluster", "inspect", "--format", "json"])
            return try JSONDecoder().decode(ClusterView.self, from: Data(output.utf8)).heartbeatPeriodMilliseconds
        }
        #expect(try period("set") == 1500)
        #expect(try period("default") == 5000)
        let (_, table) = try processes.shoal("set", ["cluster", "inspect"])
        #expect(table.contains("Heartbeat:      every 1.5s (a worker silent for 4.5s is down)"), "\(table)")
    }
}

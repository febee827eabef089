import Daemon
import Foundation
import Runtime
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

// Nested in ContainerCommandTests: its .serialized trait then covers these
// tests too, so no two ContainerHost daemons (one bridge per test process)
// run at once even when suites run in parallel.
extension ContainerCommandTests {
    /// The daemon as a real `shoal daemon` process, killed with SIGKILL while
    /// its containers run, then started again on the same data directory.
    @Suite("shoal daemon killed and started again re-adopts running containers", .serialized,
           .enabled(if: ContainerHost.available, "needs root, busybox-static and the shoal binary"), .timeLimit(.minutes(5)))
    struct ContainerDaemonRestartTests {
        @Test("a running container outlives a SIGKILLed daemon; the next daemon keeps its PID and serves ps, logs, exec, its published port and stop, recording its exit")
        func aKilledDaemonsContainersAreReadopted() async throws {
            try await ContainerHost.with { host in
                let binary = try #require(ContainerHost.binary)
                let bridge = ContainerHost.testBridge
                let arguments = ["daemon", "--data", host.data, "--host", "unix://" + host.socket, "--cgroup-parent", host.cgroupParent,
                                 "--bridge", bridge.name, "--bip", "\(IPv4Subnet.format(bridge.gateway))/\(bridge.subnet.prefixLength)",
                                 "--default-publish-address", "127.0.0.1"]
                var daemons: [Process] = []
                defer { for daemon in daemons where daemon.isRunning { kill9(daemon) } }
                func startDaemon(_ number: Int) async throws -> Process {
                    let daemon = try startBackground(binary, arguments, logPath: host.root + "/daemon-\(number).log")
                    daemons.append(daemon)
                    try await host.eventually("shoal daemon \(number) serving") { try host.shoal(["container", "ps"]).status == 0 }
                    return daemon
                }
                func inspect(_ template: String, _ name: String) throws -> String {
                    try host.ok(["container", "inspect", "-f", template, name]).trimmingCharacters(in: .whitespacesAndNewlines)
                }

                try await host.restartDaemon {
                    let first = try await startDaemon(1)
                    _ = try host.ok(["container", "run", "-d", "--name", "kept", "-p", "80", "busybox", "sh", "-c", """
                        trap 'echo stopping; exit 9' TERM; echo first
                        mkdir -p /www && echo page > /www/index.html && httpd -p 80 -h /www
                        while true; do sleep 0.1; done
                        """])
                    _ = try host.ok(["container", "run", "-d", "--name", "sleeper", "--network", "none", "busybox", "sleep", "1000"])
                    let pid = try inspect("{{.State.Pid}}", "kept")
                    let port = try host.ok(["container", "port", "kept"])
                    let hostPort = port.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
                    #expect(port.hasPrefix("80/tcp -> 127.0.0.1:"), "\(port)")
                    try await host.eventually("the page through the first daemon") { try host.curl("http://127.0.0.1:\(hostPort)/") == "page\n" }
                    try await host.eventually("first in the log") { try host.ok(["container", "logs", "kept"]) == "first\n" }

                    kill9(first)
                    #expect(kill(pid_t(pid) ?? 0, 0) == 0, "the container runs on without its daemon")
                    #expect(try host.shoal(["container", "ps"]).status != 0, "no daemon answers")

                    _ = try await startDaemon(2)
                    #expect(try inspect("{{.State.Status}} {{.State.Pid}}", "kept") == "running \(pid)")
                    let listed = try host.ok(["container", "ps", "--format", "{{.Names}} {{.State}}"])
                    #expect(listed.split(separator: "\n").sorted() == ["kept running", "sleeper running"], "\(listed)")
                    #expect(try host.ok(["container", "logs", "kept"]) == "first\n")
                    #expect(try host.ok(["container", "exec", "kept", "cat", "/www/index.html"]) == "page\n")
                    try await host.eventually("the published port bound again") { try host.curl("http://127.0.0.1:\(hostPort)/") == "page\n" }
                    // Started by a daemon that ignores SIGTERM, from a test process that blocks it: the container has neither.
                    let masks = try host.ok(["container", "exec", "sleeper", "grep", "-E", "^Sig(Blk|Ign)", "/proc/1/status"])
                    #expect(masks == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n", "\(masks)")

                    #expect(try host.ok(["container", "stop", "-t", "60", "kept"]) == "kept\n")
                    #expect(try inspect("{{.State.Status}} {{.State.ExitCode}}", "kept") == "exited 9", "SIGTERM reached the trap")
                    #expect(try host.ok(["container", "logs", "kept"]) == "first\nstopping\n")
                    #expect(kill(pid_t(pid) ?? 0, 0) != 0)
                    for daemon in daemons where daemon.isRunning { kill9(daemon) }
                }
                // The in-process daemon, started on the same directory, has the exit on record too.
                #expect(try inspect("{{.State.Status}} {{.State.ExitCode}}", "kept") == "exited 9")
                #expect(try inspect("{{.State.Status}}", "sleeper") == "running")
            }
        }
    }
}

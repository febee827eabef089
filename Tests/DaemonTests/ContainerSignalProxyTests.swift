import Daemon
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The CLI's background paths as a user runs them: `exec -d` (started,
/// output discarded, as Docker's) and `--sig-proxy` (signals the attached
/// CLI gets reach the container's main process). Real CLI, in-process
/// daemon, busybox containers.
@Suite("shoal container exec -d and --sig-proxy", .serialized, .enabled(if: ContainerHost.available, "needs root, busybox-static and the shoal binary"),
       .timeLimit(.minutes(5)))
struct ContainerSignalProxyTests {
    /// The CLI started in the background with its stdout and stderr in a file.
    final class BackgroundCommand {
        let process = Process()
        let outputPath: String

        init(_ host: ContainerHost, _ arguments: [String], name: String) throws {
            outputPath = host.root + "/" + name + ".out"
            FileManager.default.createFile(atPath: outputPath, contents: nil)
            let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
            process.executableURL = URL(fileURLWithPath: ContainerHost.binary!)
            process.arguments = arguments
            process.environment = ["SHOAL_HOST": "unix://" + host.socket, "PATH": "/usr/bin:/bin"]
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = output
            process.standardError = output
            try process.run()
            try output.close()
        }

        var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

        /// Waits (generously) for the CLI to exit; kills it by PID if it does not.
        func exitStatus(_ host: ContainerHost) async throws -> (status: Int32, reason: Process.TerminationReason) {
            do {
                try await host.eventually("the CLI to exit", timeout: .seconds(60)) { !process.isRunning }
            } catch {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw error
            }
            process.waitUntilExit()
            return (process.terminationStatus, process.terminationReason)
        }
    }

    @Test("exec -d returns at once, the process runs on inside with its output discarded; a missing command is still an error")
    func detachedExec() async throws {
        try await ContainerHost.with { host in
            _ = try host.ok(["container", "run", "-d", "--name", "box", "--network", "none", "busybox", "sleep", "1000"])
            let started = try host.shoal(["container", "exec", "-d", "-e", "MARK=set", "box",
                                          "sh", "-c", "echo to-nowhere; echo $MARK > /tmp/mark; sleep 2; echo done > /tmp/finished"])
            #expect(started.status == 0 && started.output.isEmpty && started.errors.isEmpty, "\(started)")
            // Still running after the CLI returned: the exec's sleep is a process of the container.
            let running = try host.ok(["container", "exec", "box", "sh", "-c", "cat /tmp/mark; test -e /tmp/finished && echo finished || echo running"])
            #expect(running == "set\nrunning\n", "\(running)")
            try await host.eventually("the detached exec finished") {
                try host.ok(["container", "exec", "box", "cat", "/tmp/finished"]) == "done\n"
            }
            // Docker discards a detached exec's output: not in the container's log.
            #expect(try host.ok(["container", "logs", "box"]).isEmpty)
            // Reaped by the daemon: no zombie left among the container's processes.
            let processes = try host.ok(["container", "exec", "box", "ps", "-o", "pid,stat,comm"])
            #expect(!processes.split(separator: "\n").contains { $0.contains(" Z ") }, "\(processes)")

            let missing = try host.shoal(["container", "exec", "-d", "box", "no-such-command"])
            #expect(missing.status != 0 && missing.errors.contains("no-such-command"), "\(missing)")
            _ = try host.ok(["container", "stop", "-t", "0", "box"])
            let stopped = try host.shoal(["container", "exec", "-d", "box", "true"])
            #expect(stopped.status == 1 && stopped.errors.contains("not running"), "\(stopped)")
        }
    }

    @Test("run without -t forwards the CLI's signals to the container and exits with its code; --sig-proxy=false leaves the container alone")
    func signalProxy() async throws {
        try await ContainerHost.with { host in
            let script = "trap 'echo got-TERM; exit 3' TERM; trap 'echo got-USR1' USR1; echo ready; while true; do sleep 0.1; done"
            let proxied = try BackgroundCommand(host, ["container", "run", "--name", "trapper", "--network", "none", "busybox", "sh", "-c", script],
                                                name: "proxied")
            try await host.eventually("the container's first line") { proxied.output.contains("ready") }
            kill(proxied.process.processIdentifier, SIGUSR1)
            try await host.eventually("USR1 forwarded") { proxied.output.contains("got-USR1") }
            #expect(proxied.process.isRunning, "the CLI stays attached after a forwarded signal")
            kill(proxied.process.processIdentifier, SIGTERM)
            let (status, reason) = try await proxied.exitStatus(host)
            #expect(reason == .exit && status == 3, "\(reason) \(status): \(proxied.output)")
            #expect(proxied.output.contains("got-TERM"), "\(proxied.output)")
            #expect(try host.ok(["container", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "trapper"]) == "exited 3\n")

            let unproxied = try BackgroundCommand(host, ["container", "run", "--sig-proxy=false", "--name", "alone", "--network", "none", "busybox",
                                                         "sh", "-c", script], name: "unproxied")
            try await host.eventually("the second container's first line") { unproxied.output.contains("ready") }
            kill(unproxied.process.processIdentifier, SIGTERM)
            let (_, unproxiedReason) = try await unproxied.exitStatus(host)
            #expect(unproxiedReason == .uncaughtSignal, "the CLI itself ends on SIGTERM")
            #expect(try host.ok(["container", "inspect", "-f", "{{.State.Status}}", "alone"]) == "running\n")
            #expect(!(try host.ok(["container", "logs", "alone"]).contains("got-TERM")))

            // attach proxies too: TERM through a second CLI ends the container.
            let attached = try BackgroundCommand(host, ["container", "attach", "--no-stdin", "alone"], name: "attached")
            // Output that reaches the attached CLI shows it is attached (and proxying).
            try await host.eventually("the attach live") {
                _ = try host.ok(["container", "exec", "alone", "kill", "-USR1", "1"])
                usleep(200_000)
                return attached.output.contains("got-USR1")
            }
            kill(attached.process.processIdentifier, SIGTERM)
            let (attachedStatus, attachedReason) = try await attached.exitStatus(host)
            #expect(attachedReason == .exit && attachedStatus == 3, "\(attachedReason) \(attachedStatus): \(attached.output)")
        }
    }
}

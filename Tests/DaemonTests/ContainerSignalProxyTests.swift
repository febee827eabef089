import Daemon
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Nested in ContainerCommandTests: its .serialized trait then covers these
// tests too, so no two ContainerHost daemons (one bridge per test process)
// run at once even when suites run in parallel.
extension ContainerCommandTests {
    /// The CLI's background paths as a user runs them: `exec -d` (started,
    /// output discarded, as Docker's) and `--sig-proxy` (signals the attached
    /// CLI gets reach the container's main process). Real CLI, in-process
    /// daemon, busybox containers.
    @Suite("shoal container exec -d and --sig-proxy", .serialized, .enabled(if: ContainerHost.available, "needs root, busybox-static and the shoal binary"),
           .timeLimit(.minutes(5)))
    struct ContainerSignalProxyTests {
        /// The CLI started in the background with its stdout and stderr in a
        /// file. posix_spawn with an empty signal mask and default actions: a
        /// child of Foundation's Process inherits the spawning thread's blocked
        /// signals, and a blocked SIGTERM would never end the CLI.
        final class BackgroundCommand {
            let pid: pid_t
            let outputPath: String
            private var status: Int32?

            init(_ host: ContainerHost, _ arguments: [String], name: String) throws {
                outputPath = host.root + "/" + name + ".out"
                var attributes = posix_spawnattr_t()
                posix_spawnattr_init(&attributes)
                defer { posix_spawnattr_destroy(&attributes) }
                var empty = sigset_t(), all = sigset_t()
                sigemptyset(&empty)
                sigfillset(&all)
                posix_spawnattr_setsigmask(&attributes, &empty)
                posix_spawnattr_setsigdefault(&attributes, &all)
                posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
                var actions = posix_spawn_file_actions_t()
                posix_spawn_file_actions_init(&actions)
                defer { posix_spawn_file_actions_destroy(&actions) }
                posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
                posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                posix_spawn_file_actions_adddup2(&actions, 1, 2)
                let binary = ContainerHost.binary!
                let argv: [UnsafeMutablePointer<CChar>?] = ([binary] + arguments).map { strdup($0) } + [nil]
                let environment: [String] = ["SHOAL_HOST=unix://\(host.socket)", "PATH=/usr/bin:/bin"]
                let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
                defer { (argv + envp).forEach { free($0) } }
                var child: pid_t = 0
                let result = posix_spawn(&child, binary, &actions, &attributes, argv, envp)
                guard result == 0 else { throw TestFailure("posix_spawn \(binary): \(String(cString: strerror(result)))") }
                pid = child
            }

            var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

            /// Reaped here (by PID); nil while it runs.
            var exitStatus: Int32? {
                if status == nil {
                    var raw: Int32 = 0
                    if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
                }
                return status
            }

            var isRunning: Bool { exitStatus == nil }

            /// Waits (generously) for the CLI to exit: its exit code, or nil
            /// with the signal that ended it. Killed by PID if it does not exit.
            func finish(_ host: ContainerHost) async throws -> (code: Int32?, signal: Int32?) {
                do {
                    try await host.eventually("the CLI to exit", timeout: .seconds(60)) { !isRunning }
                } catch {
                    kill(pid, SIGKILL)
                    var raw: Int32 = 0
                    waitpid(pid, &raw, 0)
                    throw error
                }
                let raw = exitStatus!
                let signal = raw & 0x7f
                return signal == 0 ? ((raw >> 8) & 0xff, nil) : (nil, signal)
            }
        }

        @Test("exec -d returns at once, the process runs on inside with its output discarded; a missing command is still an error")
        func detachedExec() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "-d", "--name", "box", "--network", "none", "busybox", "sleep", "1000"])
                let started = try host.shoal(["container", "exec", "-d", "-e", "MARK=set", "box", "sh", "-c",
                                              "echo to-nowhere; echo $MARK > /tmp/mark; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo done > /tmp/finished"])
                #expect(started.status == 0 && started.output.isEmpty && started.errors.isEmpty, "\(started)")
                try await host.eventually("the detached exec running") { try host.ok(["container", "exec", "box", "cat", "/tmp/mark"]) == "set\n" }
                // It runs on after the CLI returned, a process of the container, until told to finish.
                #expect(try host.ok(["container", "top", "box"]).contains("/tmp/go"))
                _ = try host.ok(["container", "exec", "box", "touch", "/tmp/go"])
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
                kill(proxied.pid, SIGUSR1)
                try await host.eventually("USR1 forwarded") { proxied.output.contains("got-USR1") }
                #expect(proxied.isRunning, "the CLI stays attached after a forwarded signal")
                kill(proxied.pid, SIGTERM)
                let proxiedEnd = try await proxied.finish(host)
                #expect(proxiedEnd.code == 3, "\(proxiedEnd): \(proxied.output)")
                #expect(proxied.output.contains("got-TERM"), "\(proxied.output)")
                #expect(try host.ok(["container", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "trapper"]) == "exited 3\n")

                let unproxied = try BackgroundCommand(host, ["container", "run", "--sig-proxy=false", "--name", "alone", "--network", "none", "busybox",
                                                             "sh", "-c", script], name: "unproxied")
                try await host.eventually("the second container's first line") { unproxied.output.contains("ready") }
                kill(unproxied.pid, SIGTERM)
                #expect(try await unproxied.finish(host).signal == SIGTERM, "the CLI itself ends on SIGTERM")
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
                kill(attached.pid, SIGTERM)
                let attachedEnd = try await attached.finish(host)
                #expect(attachedEnd.code == 3, "\(attachedEnd): \(attached.output)")
            }
        }
    }
}

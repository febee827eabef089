import Daemon
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `run -i/-t`, `exec -i/-t` and `attach` as a user runs them: the real CLI
/// at a pseudo-terminal (or with piped stdin) against an in-process daemon,
/// real busybox containers.
@Suite("shoal container run -it, exec -it, attach", .serialized, .enabled(if: ContainerHost.available, "needs root, busybox-static and the shoal binary"),
       .timeLimit(.minutes(5)))
struct ContainerAttachTests {
    func terminal(_ host: ContainerHost, _ arguments: [String], rows: UInt16 = 37, columns: UInt16 = 101) throws -> PseudoTerminalSession {
        var environment = ProcessInfo.processInfo.environment
        environment["SHOAL_HOST"] = "unix://" + host.socket
        return try PseudoTerminalSession(ContainerHost.binary!, arguments, environment: environment, rows: rows, columns: columns)
    }

    @Test("run -it: the container's terminal is /dev/pts/N with our size, follows a resize, and its exit code comes back")
    func runInteractiveTerminal() async throws {
        try await ContainerHost.with { host in
            let session = try terminal(host, ["container", "run", "--rm", "-it", "--network", "none", "busybox", "sh"])
            try session.waitFor("/ # ")
            #expect(session.isRaw)
            session.type("tty; stty size\n")
            try session.waitFor("37 101\r\n")
            #expect(session.screen.contains("/dev/pts/0\r\n"), "\(session.screen.debugDescription)")
            session.resize(rows: 50, columns: 120)
            // The new size reaches the container's terminal asynchronously: ask until it shows.
            try await host.eventually("the resized terminal") {
                session.type("stty size\n")
                usleep(200_000)
                return session.screen.contains("50 120\r\n")
            }
            session.type("exit 5\n")
            #expect(try session.exitStatus() == 5)
            try await host.eventually("the --rm container removed") { try host.ok(["container", "ps", "-a", "-q"]).isEmpty }
        }
    }

    @Test("run -i forwards piped stdin; its end closes the container's stdin and the exit code comes back")
    func runInteractivePipe() async throws {
        try await ContainerHost.with { host in
            let lines = (0..<3000).map { "line \($0)\n" }.joined()
            let result = try host.shoal(["container", "run", "--rm", "-i", "--network", "none", "busybox", "sh", "-c", "cat; echo end >&2; exit 4"], input: lines)
            #expect(result.status == 4, "\(result.errors)")
            #expect(result.output == lines, "\(result.output.count) bytes")
            #expect(result.errors == "end\n")
        }
    }

    @Test("exec -it gets its own terminal; exec -i streams piped stdin")
    func execInteractive() async throws {
        try await ContainerHost.with { host in
            _ = try host.ok(["container", "run", "-d", "--name", "box", "--network", "none", "busybox", "sleep", "1000"])
            let session = try terminal(host, ["container", "exec", "-it", "box", "sh"], rows: 20, columns: 60)
            try session.waitFor("/ # ")
            session.type("tty; stty size; exit 6\n")
            #expect(try session.exitStatus() == 6)
            #expect(session.screen.contains("/dev/pts/0\r\n") && session.screen.contains("20 60\r\n"), "\(session.screen.debugDescription)")
            let piped = try host.shoal(["container", "exec", "-i", "box", "sh", "-c", "wc -l; exit 2"], input: "a\nb\nc\n")
            #expect(piped.status == 2 && piped.output.trimmingCharacters(in: .whitespacesAndNewlines) == "3", "\(piped)")
        }
    }

    @Test("attach sees the output and sends input; Ctrl-P Ctrl-Q detaches and leaves the container running")
    func attachAndDetach() async throws {
        try await ContainerHost.with { host in
            _ = try host.ok(["container", "run", "-d", "-it", "--name", "shell", "--network", "none", "busybox", "sh"])
            #expect(try host.ok(["container", "inspect", "-f", "{{.Config.Tty}} {{.Config.OpenStdin}} {{.Config.StdinOnce}}", "shell"]) == "true true false\n")
            let first = try terminal(host, ["container", "attach", "shell"])
            first.type("echo one-$((20+1))\n")
            try first.waitFor("one-21")
            first.type("\u{10}\u{11}")
            #expect(try first.exitStatus() == 0)
            #expect(!first.isRaw, "the terminal is given back on detach")
            #expect(try host.ok(["container", "ps", "--format", "{{.Names}} {{.State}}"]) == "shell running\n")

            // Killed while attached: the terminal is given back too.
            let killed = try terminal(host, ["container", "attach", "shell"])
            killed.type("echo three-$((1+2))\n")
            try killed.waitFor("three-3")
            #expect(killed.isRaw)
            killed.process.terminate()
            #expect(try killed.exitStatus() == 128 + SIGTERM && !killed.isRaw)

            let second = try terminal(host, ["container", "attach", "shell"])
            second.type("echo two-$((40+2)); exit 3\n")
            try second.waitFor("two-42")
            #expect(try second.exitStatus() == 3)
            #expect(try host.ok(["container", "inspect", "-f", "{{.State.ExitCode}}", "shell"]) == "3\n")

            // Without a terminal: a -i container reads what attach pipes in.
            _ = try host.ok(["container", "run", "-d", "-i", "--name", "reader", "--network", "none", "busybox", "sh", "-c", "read line; echo got $line; exit 7"])
            let attached = try host.shoal(["container", "attach", "reader"], input: "hello\n")
            #expect(attached.status == 7 && attached.output == "got hello\n", "\(attached)")
            // start -i: a created -i container reads what start pipes in, and its exit code comes back.
            _ = try host.ok(["container", "create", "-i", "--name", "again", "--network", "none", "busybox", "sh", "-c", "read line; echo start $line; exit 8"])
            let started = try host.shoal(["container", "start", "-a", "-i", "again"], input: "piped\n")
            #expect(started.status == 8 && started.output == "start piped\n", "\(started)")
            let exited = try host.shoal(["container", "attach", "reader"])
            #expect(exited.status == 1 && exited.errors.contains("not running"), "\(exited.errors)")
        }
    }
}

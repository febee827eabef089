import Daemon
import Foundation
import HTTP
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Nested in ContainerCommandTests: its .serialized trait then covers these
// tests too, so no two ContainerHost daemons (one bridge per test process)
// run at once even when suites run in parallel.
extension ContainerCommandTests {
    /// Where `shoal container` follows Docker on details a user notices:
    /// `-P` on the daemon's default publish address, `-w` to a missing
    /// directory, `Config.Healthcheck` in inspect, `exec -d -it`. Real CLI,
    /// in-process daemon (its default publish address is 127.0.0.1), busybox.
    @Suite("shoal container: -P, -w creating its directory, inspect's Healthcheck, exec -d -t", .serialized,
           .enabled(if: ContainerHost.available, "needs root, busybox-static and the shoal binary"), .timeLimit(.minutes(5)))
    struct ContainerDockerParityTests {
        @Test("-P publishes each EXPOSEd port on the daemon's default publish address; port shows it and curl reaches it; -p without an address binds there too")
        func publishAllOnTheDefaultAddress() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "--name", "base", "--network", "none", "busybox", "true"])
                _ = try host.ok(["container", "commit", "-c", "EXPOSE 80 8080", "base", "web:exposed"])
                let serve = "mkdir -p /tmp/www && echo hello-from-$(hostname) > /tmp/www/index.html && httpd -p 8080 -h /tmp/www && exec httpd -f -p 80 -h /tmp/www"
                _ = try host.ok(["container", "run", "-d", "-P", "--name", "web", "-h", "all", "web:exposed", "sh", "-c", serve])
                let lines = try host.ok(["container", "port", "web"]).split(separator: "\n").map(String.init).sorted()
                #expect(lines.count == 2 && lines[0].hasPrefix("80/tcp -> 127.0.0.1:") && lines[1].hasPrefix("8080/tcp -> 127.0.0.1:"), "\(lines)")
                for line in lines {
                    let hostPort = try #require(line.split(separator: ":").last.flatMap { UInt16($0) }, "\(line)")
                    #expect(hostPort != 0 && hostPort != 80 && hostPort != 8080, "a free host port: \(line)")
                    try await host.eventually("curl through \(line)") { try host.curl("http://127.0.0.1:\(hostPort)/") == "hello-from-all\n" }
                }
                let bound = try host.ok(["container", "inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"])
                #expect(bound.contains("\"80/tcp\":\"127.0.0.1:") && bound.contains("\"8080/tcp\":\"127.0.0.1:"), "\(bound)")

                _ = try host.ok(["container", "run", "-d", "-p", "80", "--name", "one", "-h", "one", "busybox", "sh", "-c", serve])
                let one = try host.ok(["container", "port", "one"])
                #expect(one.hasPrefix("80/tcp -> 127.0.0.1:"), "-p CONTAINER binds the default address: \(one)")
                let onePort = one.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
                try await host.eventually("curl to -p 80") { try host.curl("http://127.0.0.1:\(onePort)/") == "hello-from-one\n" }
                // No EXPOSE in the image: -P publishes nothing.
                _ = try host.ok(["container", "run", "-d", "-P", "--name", "bare", "busybox", "sleep", "1000"])
                #expect(try host.ok(["container", "port", "bare"]) == "")
                for name in ["web", "one", "bare"] { _ = try host.ok(["container", "rm", "-f", name]) }
            }
        }

        @Test("port, ps and inspect show published ports only while the container runs (Docker's `port` prints nothing for a stopped one, never host port 0); a named port not published is a clear error")
        func portsOfAContainerThatIsNotRunning() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "create", "-p", "80", "--name", "idle", "busybox", "sleep", "1000"])
                #expect(try host.ok(["container", "port", "idle"]) == "", "nothing is bound before a start")
                _ = try host.ok(["container", "run", "-d", "-p", "80", "--name", "web", "busybox", "sleep", "1000"])
                let running = try host.ok(["container", "port", "web"])
                #expect(running.hasPrefix("80/tcp -> 127.0.0.1:") && !running.hasSuffix(":0\n"), "\(running)")
                #expect(try host.ok(["container", "port", "web", "80"]).hasPrefix("127.0.0.1:"))
                let other = try host.shoal(["container", "port", "web", "81"])
                #expect(other.status != 0 && other.errors.contains("no public port '81/tcp' published for web"), "\(other)")
                let invalid = try host.shoal(["container", "port", "web", "http"])
                #expect(invalid.status != 0 && invalid.errors.contains("invalid port 'http'"), "\(invalid)")

                _ = try host.ok(["container", "stop", "-t", "0", "web"])
                #expect(try host.ok(["container", "port", "web"]) == "", "a stopped container publishes nothing")
                let named = try host.shoal(["container", "port", "web", "80/tcp"])
                #expect(named.status != 0 && named.output.isEmpty, "\(named)")
                #expect(named.errors.contains("no public port '80/tcp' published for web") && named.errors.contains("web is not running"), "\(named.errors)")
                #expect(try host.ok(["container", "inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"]) == "{}\n")
                let listed = try host.ok(["container", "ps", "-a", "--format", "{{.Names}} [{{.Ports}}]"])
                #expect(listed.contains("web []") && listed.contains("idle []") && !listed.contains("->80/tcp"), "\(listed)")
                for name in ["web", "idle"] { _ = try host.ok(["container", "rm", "-f", name]) }
            }
        }

        @Test("shoal daemon --default-publish-address (and dockerd's --ip) takes an IPv4 address and refuses anything else")
        func defaultPublishAddressFlag() throws {
            let binary = try #require(ContainerHost.binary)
            for flag in ["--default-publish-address", "--ip"] {
                let refused = try runToExit(binary, ["daemon", flag, "localhost", "--data", "/nonexistent/shoal-flag-test", "--host", "unix:///nonexistent/s.sock"])
                #expect(refused.status == 2, "\(refused)")
                #expect(refused.error.contains("\(flag) 'localhost' must be an IPv4 address of this host, like 127.0.0.1"), "\(refused.error)")
            }
        }

        @Test("-w to a missing directory creates it (and its parents) owned by root with mode 0755, as Docker does, also for another user")
        func workdirIsCreated() async throws {
            try await ContainerHost.with { host in
                let made = try host.shoal(["container", "run", "--name", "made", "--network", "none", "-w", "/srv/app/data", "-u", "1000", "busybox",
                                           "sh", "-c", "pwd; stat -c '%u:%g %a' . /srv/app /srv"])
                #expect(made.status == 0, "\(made.errors)")
                #expect(made.output == "/srv/app/data\n0:0 755\n0:0 755\n0:0 755\n", "\(made.output)")
                #expect(try host.ok(["container", "diff", "made"]).contains("A /srv/app/data"))
                // The directory is the container's: a new container of the image has none.
                let fresh = try host.shoal(["container", "run", "--rm", "--network", "none", "busybox", "ls", "/srv"])
                #expect(fresh.status != 0, "\(fresh.output)")
                // exec does not create one (nor does Docker's).
                _ = try host.ok(["container", "run", "-d", "--name", "box", "--network", "none", "busybox", "sleep", "1000"])
                let exec = try host.shoal(["container", "exec", "-w", "/nowhere", "box", "true"])
                #expect(exec.status != 0 && exec.errors.contains("/nowhere"), "\(exec)")
                for name in ["made", "box"] { _ = try host.ok(["container", "rm", "-f", name]) }
            }
        }

        @Test("inspect shows Config.Healthcheck as Docker does: Test, Interval, Timeout, StartPeriod (ns) and Retries; NONE with --no-healthcheck")
        func inspectShowsTheHealthcheck() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "create", "--name", "checked", "--network", "none", "--health-cmd", "test -e /tmp/ok",
                                 "--health-interval", "2s", "--health-timeout", "500ms", "--health-start-period", "1m", "--health-retries", "4",
                                 "busybox", "sleep", "1000"])
                let text = try host.ok(["container", "inspect", "-f", "{{json .Config.Healthcheck}}", "checked"])
                let check = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
                #expect(check["Test"] as? [String] == ["CMD-SHELL", "test -e /tmp/ok"], "\(text)")
                #expect(check["Interval"] as? Int == 2_000_000_000 && check["Timeout"] as? Int == 500_000_000, "\(text)")
                #expect(check["StartPeriod"] as? Int == 60_000_000_000 && check["Retries"] as? Int == 4, "\(text)")
                // Only the command given: Docker's defaults (30 s, 30 s, 0, 3) filled in.
                _ = try host.ok(["container", "create", "--name", "defaults", "--network", "none", "--health-cmd", "true", "busybox", "sleep", "1000"])
                let defaults = try host.ok(["container", "inspect", "-f",
                                            "{{index .Config.Healthcheck.Test 1}} {{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Timeout}} {{.Config.Healthcheck.StartPeriod}} {{.Config.Healthcheck.Retries}}",
                                            "defaults"])
                #expect(defaults == "true 30000000000 30000000000 0 3\n", "\(defaults)")
                _ = try host.ok(["container", "create", "--name", "unchecked", "--network", "none", "--no-healthcheck", "busybox", "true"])
                #expect(try host.ok(["container", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", "unchecked"]) == "[\"NONE\"]\n")
                // Without a check the field is absent, as in Docker's inspect.
                _ = try host.ok(["container", "create", "--name", "plain", "--network", "none", "busybox", "true"])
                let plain = try host.ok(["container", "inspect", "--format", "json", "plain"])
                #expect(!plain.contains("Healthcheck"), "\(plain)")
                for name in ["checked", "defaults", "unchecked", "plain"] { _ = try host.ok(["container", "rm", "-f", name]) }
            }
        }

        @Test("exec -d -it starts the process on a terminal nobody holds (a shell waits there instead of reading end of file), as Docker's; a detached exec takes no input, now or later")
        func detachedExecWithATerminal() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "-d", "--name", "box", "--network", "none", "busybox", "sleep", "1000"])
                let script = "tty > /tmp/$0.tty; read line; echo read > /tmp/$0.read"
                #expect(try host.ok(["container", "exec", "-d", "-it", "box", "sh", "-c", script, "terminal"]) == "")
                #expect(try host.ok(["container", "exec", "-d", "box", "sh", "-c", script, "plain"]) == "")
                try await host.eventually("both started") {
                    try host.ok(["container", "exec", "box", "cat", "/tmp/terminal.tty", "/tmp/plain.read"]).hasSuffix("read\n")
                }
                let tty = try host.ok(["container", "exec", "box", "cat", "/tmp/terminal.tty"])
                #expect(tty.hasPrefix("/dev/pts/"), "\(tty)")
                try await Task.sleep(for: .milliseconds(500))
                let waiting = try host.shoal(["container", "exec", "box", "cat", "/tmp/terminal.read"])
                #expect(waiting.status != 0, "the shell on the terminal is still waiting for input: \(waiting)")
                #expect(try host.ok(["container", "top", "box"]).contains("read line"))

                let client = try ControlClient(host: "unix://" + host.socket, timeout: .seconds(20))
                var request = ContainerExecRequest(command: ["cat"])
                request.detach = true
                request.interactive = true
                let refused = try await client.send(.post, "/v1/containers/box/exec", json: request)
                await client.shutdown()
                #expect(refused.status == 400, "\(refused.text)")
                #expect(refused.text.contains("no client attached, now or later"), "\(refused.text)")
                _ = try host.ok(["container", "rm", "-f", "box"])
            }
        }
    }
}

import TestSupport
import Daemon
import Foundation
import Runtime
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `shoal container` and `shoal volume` as a user runs them: the real CLI
/// binary against an in-process daemon on a temporary socket and data
/// directory, real containers from a busybox-static image.
@Suite("shoal container and shoal volume", .serialized, .enabled(if: ContainerHost.available, "needs root, busybox-static and the shoal binary"),
       .timeLimit(.minutes(5)))
struct ContainerCommandTests {
    @Test("run -d, ps, logs, stop, ps -a with the exit code, rm")
    func lifecycle() async throws {
        try await ContainerHost.with { host in
            let id = try host.ok(["container", "run", "-d", "--name", "web", "busybox",
                                  "sh", "-c", "echo hello; trap 'echo bye; exit 7' TERM; while true; do sleep 0.1; done"])
            #expect(id.trimmingCharacters(in: .whitespacesAndNewlines).count == 64, "\(id)")
            let ps = try host.ok(["container", "ps"])
            #expect(ps.contains("web") && ps.contains("Up ") && ps.contains(String(id.prefix(12))), "\(ps)")
            try await host.eventually("hello in the logs") { try host.ok(["container", "logs", "web"]) == "hello\n" }
            let timestamped = try host.ok(["container", "logs", "--timestamps", "--tail", "1", "web"])
            #expect(timestamped.hasSuffix("Z hello\n") && timestamped.hasPrefix("20"), "\(timestamped)")

            #expect(try host.ok(["container", "stop", "-t", "20", "web"]) == "web\n")
            #expect(try host.ok(["container", "ps", "-q"]).isEmpty)
            let exited = try host.ok(["container", "ps", "-a", "-f", "status=exited", "--format", "{{.Names}}: {{.Status}}"])
            #expect(exited.hasPrefix("web: Exited (7) "), "\(exited)")
            // Logs are kept after the exit.
            #expect(try host.ok(["container", "logs", "web"]) == "hello\nbye\n")
            let json = try host.ok(["container", "ps", "-a", "--format", "json"])
            let listed = try JSONDecoder().decode([ContainerSummary].self, from: Data(json.utf8))
            #expect(listed.map(\.name) == ["web"] && listed.first?.exitCode == 7)

            #expect(try host.ok(["container", "rm", "web"]) == "web\n")
            #expect(try host.ok(["container", "ps", "-a", "-q"]).isEmpty)
            #expect(!FileManager.default.fileExists(atPath: host.data + "/containers/" + id.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
    }

    @Test("run without -d prints the output and exits with the container's code; --rm removes it")
    func attachedRunAndRemove() async throws {
        try await ContainerHost.with { host in
            let (status, output, errors) = try host.shoal(["container", "run", "--rm", "--name", "gone", "-e", "WHO=shoal", "busybox",
                                                          "sh", "-c", "echo out $WHO; echo err >&2; exit 3"])
            #expect(status == 3)
            #expect(output == "out shoal\n")
            #expect(errors == "err\n")
            // Gone from view once the CLI returns (files may still be going): the name is free at once.
            #expect(try host.ok(["container", "ps", "-a", "-q"]).isEmpty)
            #expect(try host.ok(["container", "run", "--rm", "--name", "gone", "--network", "none", "busybox", "echo", "again"]) == "again\n")
            #expect(try host.shoal(["container", "inspect", "gone"]).status == 1)
            // A command the image lacks: Docker's 127, recorded as exited.
            let missing = try host.shoal(["container", "run", "--name", "typo", "busybox", "no-such-command"])
            #expect(missing.status == 127)
            #expect(missing.errors.contains("no-such-command"), "\(missing.errors)")
            #expect(try host.ok(["container", "ps", "-a", "--format", "{{.Names}} {{.State}}"]) == "typo exited\n")
        }
    }

    @Test("bad images, names and flags give clear errors and create nothing")
    func clearErrors() async throws {
        try await ContainerHost.with { host in
            let image = try host.shoal(["container", "run", "no-such-image", "true"])
            #expect(image.status == 1 && image.errors.contains("no such image: no-such-image") && image.errors.contains("shoal image import"), "\(image.errors)")
            let logs = try host.shoal(["container", "logs", "nobody"])
            #expect(logs.status == 1 && logs.errors.contains("no such container: nobody"), "\(logs.errors)")
            _ = try host.ok(["container", "create", "--name", "taken", "busybox", "true"])
            let taken = try host.shoal(["container", "create", "--name", "taken", "busybox", "true"])
            #expect(taken.status == 1 && taken.errors.contains("already in use"), "\(taken.errors)")
            for (arguments, fragment) in [
                (["--name", "bad name!"], "--name"),
                (["--memory", "lots"], "--memory"),
                (["--restart", "sometimes"], "--restart"),
                (["-v", "relative:dir"], "absolute"),
                (["--rm", "--restart", "always"], "exclude"),
                (["-i", "-t"], "not a TTY"),
                (["-p", "99999:80"], "port number"),
                (["--network", "overlay"], "none, host or bridge"),
                (["--health-interval", "1s"], "--health-cmd"),
                (["--health-cmd", "true", "--health-timeout", "soon"], "duration"),
                (["--bogus"], "unknown flag"),
            ] {
                let result = try host.shoal(["container", "run"] + arguments + ["busybox", "true"])
                #expect(result.status != 0 && result.errors.contains(fragment), "\(arguments): \(result.errors)")
            }
            #expect(try host.ok(["container", "ps", "-a", "--format", "{{.Names}}"]) == "taken\n")
            let running = try host.shoal(["container", "exec", "taken", "true"])
            #expect(running.status == 1 && running.errors.contains("not running"), "\(running.errors)")
        }
    }

    @Test("named volumes outlive containers; rm -v removes anonymous ones; a used volume is kept")
    func volumes() async throws {
        try await ContainerHost.with { host in
            _ = try host.ok(["container", "run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/file"])
            #expect(try host.ok(["container", "run", "--rm", "-v", "data:/mnt:ro", "busybox", "cat", "/mnt/file"]) == "kept\n")
            let readOnly = try host.shoal(["container", "run", "--rm", "-v", "data:/mnt:ro", "busybox", "touch", "/mnt/other"])
            #expect(readOnly.status != 0)
            #expect(try host.ok(["volume", "ls", "-q"]) == "data\n")
            let inspected = try host.ok(["volume", "inspect", "--format", "{{.mountpoint}}", "data"])
            #expect(inspected == host.data + "/volumes/data/_data\n")

            _ = try host.ok(["container", "run", "-d", "--name", "holder", "-v", "data:/data", "-v", "/scratch", "busybox", "sleep", "1000"])
            let anonymous = try host.ok(["volume", "ls", "-q"]).split(separator: "\n").filter { $0 != "data" }
            #expect(anonymous.count == 1 && anonymous[0].count == 64)
            // --volumes-from sees the same directories.
            #expect(try host.ok(["container", "run", "--rm", "--volumes-from", "holder", "busybox", "sh", "-c", "cat /data/file; touch /scratch/x"]) == "kept\n")
            let inUse = try host.shoal(["volume", "rm", "data"])
            #expect(inUse.status == 1 && inUse.errors.contains("in use"), "\(inUse.errors)")
            _ = try host.ok(["container", "rm", "-f", "-v", "holder"])
            #expect(try host.ok(["volume", "ls", "-q"]) == "data\n")
            #expect(try host.ok(["volume", "rm", "data"]) == "data\n")
            #expect(try host.ok(["volume", "ls", "-q"]).isEmpty)
        }
    }

    @Test("exec runs inside with its exit code; inspect --format reads field paths; top, stats, pause and unpause")
    func execAndInspect() async throws {
        try await ContainerHost.with { host in
            _ = try host.ok(["container", "run", "-d", "--name", "box", "-h", "boxhost", "--memory", "64m", "--pids-limit", "50", "busybox", "sleep", "1000"])
            let exec = try host.shoal(["container", "exec", "-e", "X=1", "box", "sh", "-c", "echo $X $(hostname); echo oops >&2; exit 4"])
            #expect(exec.status == 4 && exec.output == "1 boxhost\n" && exec.errors == "oops\n", "\(exec)")

            let piped = try host.shoal(["container", "exec", "-i", "box", "sh", "-c", "wc -l; cat"], input: "one\ntwo\n")
            #expect(piped.status == 0 && piped.output.trimmingCharacters(in: .whitespaces) == "2\n", "\(piped)")

            let pid = try host.ok(["container", "inspect", "--format", "{{.State.Pid}}", "box"]).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(Int32(pid) ?? 0 > 0, "\(pid)")
            let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline").map { String(decoding: $0, as: UTF8.self) } ?? ""
            #expect(cmdline.hasPrefix("sleep\u{0}1000"), "\(cmdline)")
            #expect(try host.ok(["container", "inspect", "-f", "{{.Name}} {{.State.Running}} {{.HostConfig.Memory}} {{json .Config.Cmd}}", "box"])
                    == "/box true 67108864 [\"sleep\",\"1000\"]\n")
            let bad = try host.shoal(["container", "inspect", "-f", "{{.State.Nope}}", "box"])
            #expect(bad.status == 1 && bad.errors.contains("Nope"), "\(bad.errors)")

            let top = try host.ok(["container", "top", "box"])
            #expect(top.contains("PID") && top.contains("sleep 1000"), "\(top)")
            let stats = try host.ok(["container", "stats", "--no-stream", "box"])
            #expect(stats.contains("box") && stats.contains("/ 64.00MiB"), "\(stats)")
            // A health check turns healthy once its command exits 0.
            _ = try host.ok(["container", "run", "-d", "--name", "checked", "--health-cmd", "test -e /tmp/ready", "--health-interval", "100ms",
                             "--health-retries", "2", "busybox", "sh", "-c", "sleep 0.5; touch /tmp/ready; sleep 1000"])
            try await host.eventually("healthy") {
                try host.ok(["container", "inspect", "-f", "{{.State.Health.Status}}", "checked"]) == "healthy\n"
            }
            #expect(try host.ok(["container", "ps", "--format", "{{.Names}} {{.Status}}", "-f", "status=running"]).contains("(healthy)"))
            _ = try host.ok(["container", "rm", "-f", "checked"])
            // --health-start-period: failures inside it do not count (Docker's rule); the same
            // failing check without one turns unhealthy, so the probes did run meanwhile.
            _ = try host.ok(["container", "run", "-d", "--name", "warming", "--health-cmd", "false", "--health-interval", "100ms",
                             "--health-retries", "1", "--health-start-period", "1h", "busybox", "sleep", "1000"])
            _ = try host.ok(["container", "run", "-d", "--name", "failing", "--health-cmd", "false", "--health-interval", "100ms",
                             "--health-retries", "1", "--health-start-period", "0s", "busybox", "sleep", "1000"])
            try await host.eventually("unhealthy without a start period (0s is none, as Docker's default)") {
                try host.ok(["container", "inspect", "-f", "{{.State.Health.Status}}", "failing"]) == "unhealthy\n"
            }
            #expect(try host.ok(["container", "inspect", "-f", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "warming"]) == "starting 0\n")
            _ = try host.ok(["container", "rm", "-f", "warming", "failing"])

            #expect(try host.ok(["container", "pause", "box"]) == "box\n")
            #expect(try host.ok(["container", "ps", "--format", "{{.Names}} {{.State}}"]) == "box paused\n")
            let frozen = try host.shoal(["container", "exec", "box", "true"])
            #expect(frozen.status == 1 && frozen.errors.contains("unpause"), "\(frozen.errors)")
            #expect(try host.ok(["container", "unpause", "box"]) == "box\n")
            #expect(try host.shoal(["container", "exec", "box", "true"]).status == 0)
            #expect(try host.ok(["container", "kill", "-s", "KILL", "box"]) == "box\n")
            try await host.eventually("killed") {
                try host.ok(["container", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "box"]) == "exited 137\n"
            }
            _ = try host.ok(["container", "rm", "box"])
        }
    }

    @Test("bridge by default: -p publishes to the host (port shows it, curl gets the page), --link names a container, --network none has only lo")
    func networking() async throws {
        try await ContainerHost.with { host in
            _ = try host.ok(["container", "run", "-d", "--name", "web", "-p", "127.0.0.1::80", "busybox",
                             "sh", "-c", "mkdir -p /tmp/www && echo hello-from-web > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"])
            let port = try host.ok(["container", "port", "web"])
            #expect(port.hasPrefix("80/tcp -> 127.0.0.1:"), "\(port)")
            let hostPort = port.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            try await host.eventually("curl through the published port") {
                try host.curl("http://127.0.0.1:\(hostPort)/") == "hello-from-web\n"
            }
            let address = try host.ok(["container", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"])
            #expect(address.hasPrefix("10.91."), "\(address)")
            #expect(try host.ok(["container", "run", "--rm", "--link", "web:site", "busybox", "wget", "-q", "-O", "-", "http://site/"]) == "hello-from-web\n")
            let interfaces = try host.ok(["container", "run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net"])
            #expect(interfaces == "lo\n", "\(interfaces)")
            _ = try host.ok(["container", "rm", "-f", "web"])
        }
    }

    @Test("diff lists the writable layer's additions and deletions; export -o writes the merged root as a tar")
    func diffAndExport() async throws {
        try await ContainerHost.with { host in
            _ = try host.ok(["container", "run", "--name", "changed", "busybox", "sh", "-c", "echo new > /made; rm /etc/group"])
            let changes = try host.ok(["container", "diff", "changed"]).split(separator: "\n").map(String.init)
            #expect(changes.contains("A /made"), "\(changes)")
            #expect(changes.contains("D /etc/group"), "\(changes)")
            #expect(changes.contains("C /etc"), "\(changes)")
            #expect(!changes.contains { $0.hasSuffix(" /etc/hosts") }, "the runtime's mount points are left out: \(changes)")

            let archive = host.root + "/changed.tar"
            #expect(try host.ok(["container", "export", "-o", archive, "changed"]) == "")
            let listing = Process()
            listing.executableURL = URL(fileURLWithPath: "/bin/sh")
            listing.arguments = ["-c", "tar -tf \(archive)"]
            let output = Pipe()
            listing.standardOutput = output
            try listing.run()
            let names = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                .split(separator: "\n").map { $0.hasPrefix("./") ? String($0.dropFirst(2)) : String($0) }
            listing.waitUntilExit()
            #expect(listing.terminationStatus == 0)
            #expect(names.contains("made"), "\(names.prefix(20))")
            #expect(names.contains("etc/passwd") && !names.contains("etc/group"), "\(names.filter { $0.hasPrefix("etc") })")

            let missing = try host.shoal(["container", "diff", "no-such"])
            #expect(missing.status == 1 && missing.errors.contains("no such container"), "\(missing)")
            let failedExport = try host.shoal(["container", "export", "-o", host.root + "/none.tar", "no-such"])
            #expect(failedExport.status == 1 && failedExport.errors.contains("no such container"), "\(failedExport)")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: host.root).filter { $0.hasPrefix("none.tar") }
            #expect(leftovers.isEmpty, "a failed export leaves nothing: \(leftovers)")
        }
    }

    @Test("a restart policy restarts a failing container up to its limit; start runs an exited one again")
    func restartPolicy() async throws {
        try await ContainerHost.with { host in
            _ = try host.ok(["container", "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 1"])
            try await host.eventually("two restarts") {
                try host.ok(["container", "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "flaky"]) == "2 exited\n"
                    && host.ok(["container", "logs", "flaky"]) == "run\nrun\nrun\n"
            }
            let again = try host.shoal(["container", "start", "-a", "flaky"])
            #expect(again.status == 1 && again.output == "run\n", "\(again)")
        }
    }

    @Test("a removal the daemon did not finish (stopped half-way) is finished when it starts: out of view, state, layer and anonymous volume gone")
    func interruptedRemovalFinishesAtStart() async throws {
        try await ContainerHost.with { host in
            let id = try host.ok(["container", "run", "-d", "--name", "half", "--network", "none", "-v", "/scratch", "busybox", "true"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            try await host.eventually("half exited") { try host.ok(["container", "inspect", "-f", "{{.State.Status}}", "half"]) == "exited\n" }
            #expect(try host.ok(["volume", "ls", "-q"]).split(separator: "\n").count == 1)
            let record = host.data + "/local/containers/" + id + ".json"
            try await host.restartDaemon {
                // What `remove` writes before the container leaves the view.
                var fields = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: record))) as? [String: Any])
                fields["removal"] = ["anonymousVolumes": true]
                try JSONSerialization.data(withJSONObject: fields).write(to: URL(fileURLWithPath: record))
            }
            #expect(try host.ok(["container", "ps", "-a", "-q"]).isEmpty)
            #expect(try host.shoal(["container", "inspect", "half"]).status == 1)
            for path in [record, host.data + "/local/rw/" + id, host.data + "/containers/" + id] {
                #expect(!FileManager.default.fileExists(atPath: path), "\(path) is left")
            }
            #expect(try host.ok(["volume", "ls", "-q"]).isEmpty)
            #expect(try host.ok(["container", "run", "--rm", "--name", "half", "--network", "none", "busybox", "echo", "free"]) == "free\n")
        }
    }

    @Test("what a crash leaves half is removed when the daemon starts: an emptied record, a runtime state without a record, a --rm record without its runtime state (with its anonymous volume)")
    func halfWrittenContainersAreRemovedAtStart() async throws {
        try await ContainerHost.with { host in
            func create(_ arguments: [String]) throws -> String {
                try host.ok(["container", "create", "--network", "none"] + arguments + ["busybox", "true"]).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let emptied = try create(["--name", "emptied"])
            let unrecorded = try create(["--name", "unrecorded"])
            let removing = try create(["--rm", "--name", "removing", "-v", "/scratch"])
            let kept = try create(["--name", "kept"])
            #expect(try host.ok(["volume", "ls", "-q"]).split(separator: "\n").count == 1)
            func record(_ id: String) -> String { host.data + "/local/containers/" + id + ".json" }
            func runtimeState(_ id: String) -> String { host.data + "/containers/containers/" + id }
            try await host.restartDaemon {
                // Records are written without fsync: a machine crash can empty
                // or lose one, or keep a record whose runtime state it lost.
                #expect(truncate(record(emptied), 0) == 0)
                #expect(unlink(record(unrecorded)) == 0)
                try FileManager.default.removeItem(atPath: runtimeState(removing))
            }
            #expect(try host.ok(["container", "ps", "-a", "-q", "--no-trunc"]) == kept + "\n")
            for id in [emptied, unrecorded, removing] {
                for path in [record(id), runtimeState(id), host.data + "/local/rw/" + id] {
                    #expect(!FileManager.default.fileExists(atPath: path), "\(path) is left")
                }
            }
            #expect(try host.ok(["volume", "ls", "-q"]).isEmpty, "the --rm container's anonymous volume is left")
            // Their names are free again.
            #expect(try host.ok(["container", "run", "--rm", "--name", "emptied", "--network", "none", "busybox", "echo", "free"]) == "free\n")
        }
    }

    @Test("start rewrites no record it does not change: the record of a container nobody stopped keeps its file")
    func startKeepsAnUnchangedRecord() async throws {
        try await ContainerHost.with { host in
            let id = try host.ok(["container", "create", "--name", "once", "--network", "none", "busybox", "sleep", "1000"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let path = host.data + "/local/containers/" + id + ".json"
            func inode() throws -> UInt64 { try #require(FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? UInt64) }
            let created = try inode()
            _ = try host.ok(["container", "start", "once"])
            #expect(try host.ok(["container", "inspect", "-f", "{{.State.Status}}", "once"]) == "running\n")
            #expect(try inode() == created, "start rewrote the record")
            _ = try host.ok(["container", "stop", "-t", "0", "once"])
            // (Not by inode: a rewrite after the stop may get the freed number back.)
            let record = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            #expect(record["stoppedByUser"] as? Bool == true, "stop records that the user stopped it")
        }
    }

    /// A test process kept ~180 descriptors of stopped daemons, among them
    /// deleted container.log files: a restarted daemon's monitors write the
    /// logs of the containers it adopted, and `logs -f` follows them.
    @Test("a daemon that adopted a running container and followed its logs leaves no descriptor of them open once stopped")
    func noDescriptorLeftBehind() async throws {
        var root = ""
        try await ContainerHost.with { host in
            root = host.root
            // About 10 s of output, then it exits (which ends `logs -f`).
            _ = try host.ok(["container", "run", "-d", "--name", "talker", "busybox", "sh", "-c",
                             "i=0; while [ $i -lt 100 ]; do echo tick; sleep 0.1; i=$((i+1)); done"])
            // The new daemon adopts the running container: its monitor, in this process, writes the log.
            try await host.restartDaemon {}
            try await host.eventually("the adopted container's output reaches its log") {
                try host.ok(["container", "logs", "--tail", "1", "talker"]) == "tick\n"
            }
            let follow = try host.shoal(["container", "logs", "-f", "talker"])
            #expect(follow.status == 0 && follow.output.contains("tick"), "\(follow.errors)")
            _ = try host.ok(["container", "rm", "-f", "talker"])
        }
        let deadline = ContinuousClock.now + .seconds(10)
        var left: [String] = []
        repeat {
            left = OpenDescriptors().targets.values.filter { $0.hasPrefix(root) }.sorted()
            if left.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        #expect(left.isEmpty, "descriptors into the stopped daemon's directory: \(left)")
    }

    @Test("on daemon start, exits that happened while it was down get their restart policy and --rm; always restarts a stopped container, unless-stopped does not")
    func restartPoliciesAcrossDaemonRestart() async throws {
        try await ContainerHost.with { host in
            // Each waits for a file the test creates while no daemon runs.
            let wait = "while [ ! -e /signal/go ]; do sleep 0.1; done"
            for name in ["failing", "finishing", "removed", "plain"] {
                try FileManager.default.createDirectory(atPath: host.root + "/signal-" + name, withIntermediateDirectories: true)
            }
            func signal(_ name: String) -> [String] { ["-v", host.root + "/signal-" + name + ":/signal"] }
            _ = try host.ok(["container", "run", "-d", "--name", "failing", "--restart", "on-failure:2"] + signal("failing")
                            + ["busybox", "sh", "-c", "echo started; \(wait); exit 3"])
            _ = try host.ok(["container", "run", "-d", "--name", "finishing", "--restart", "always"] + signal("finishing")
                            + ["busybox", "sh", "-c", "echo started; [ -e /signal/ran ] && exec sleep 1000; \(wait); touch /signal/ran"])
            _ = try host.ok(["container", "run", "-d", "--rm", "--name", "removed"] + signal("removed") + ["busybox", "sh", "-c", wait])
            _ = try host.ok(["container", "run", "-d", "--name", "plain"] + signal("plain") + ["busybox", "sh", "-c", "\(wait); exit 5"])
            for (name, policy) in [("kept-stopped", "unless-stopped"), ("brought-back", "always")] {
                _ = try host.ok(["container", "run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "1000"])
                _ = try host.ok(["container", "stop", "-t", "0", name])
            }
            let waiting = ["failing", "finishing", "removed", "plain"]
            let pids = try waiting.map { try host.ok(["container", "inspect", "-f", "{{.State.Pid}}", $0]).trimmingCharacters(in: .whitespacesAndNewlines) }
            #expect(pids.allSatisfy { (Int32($0) ?? 0) > 0 }, "\(pids)")

            try await host.restartDaemon {
                for name in waiting { FileManager.default.createFile(atPath: host.root + "/signal-" + name + "/go", contents: nil) }
                try await host.eventually("the containers exit while the daemon is down") {
                    pids.allSatisfy { !FileManager.default.fileExists(atPath: "/proc/" + $0) }
                }
            }

            // on-failure:2: the exit while down counts, then two more runs fail at once.
            try await host.eventually("failing restarted up to its limit") {
                try host.ok(["container", "inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", "failing"]) == "2 exited 3\n"
                    && host.ok(["container", "logs", "failing"]) == "started\nstarted\nstarted\n"
            }
            try await host.eventually("always restarted the one that finished") {
                try host.ok(["container", "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "finishing"]) == "1 running\n"
            }
            // Removed while the daemon starts, before it answers.
            #expect(try host.shoal(["container", "inspect", "removed"]).status == 1)
            #expect(try host.ok(["container", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "plain"]) == "exited 5\n")
            try await host.eventually("always brings back a container stopped before the restart") {
                try host.ok(["container", "inspect", "-f", "{{.State.Status}}", "brought-back"]) == "running\n"
            }
            #expect(try host.ok(["container", "inspect", "-f", "{{.State.Status}}", "kept-stopped"]) == "exited\n")
        }
    }
}

/// One daemon with a busybox image for the container tests; the CLI binary
/// runs against its socket. Removes its containers, cgroups and files.
final class ContainerHost: @unchecked Sendable {
    static var binary: String? { ProcessTests.shoalBinary }

    static var available: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/bin/busybox") && binary != nil
    }

    /// Not the host's shoal0, nor RuntimeTests' shoaltest<pid>: one runtime per bridge.
    static let testBridge = BridgeConfiguration(name: "shoalct\(getpid() % 100_000)", subnet: IPv4Subnet("10.91.\(getpid() % 250).0/24")!)

    let root: String
    let data: String
    let socket: String
    let cgroupParent: String
    let settings: DaemonSettings
    private(set) var daemon: Daemon

    private init() async throws {
        let token = UUID().uuidString.prefix(8).lowercased()
        root = NSTemporaryDirectory() + "shoal-container-tests-" + token
        data = root + "/data"
        socket = root + "/shoal.sock"
        cgroupParent = "shoal-test-\(token)"
        try FileManager.default.createDirectory(atPath: root + "/rootfs", withIntermediateDirectories: true)
        let script = """
            set -e; cd \(root)/rootfs; mkdir -p bin etc tmp proc sys dev root
            cp /bin/busybox bin/busybox; chroot . /bin/busybox --install -s /bin
            printf 'root:x:0:0:root:/root:/bin/sh\\n' > etc/passwd; printf 'root:x:0:\\n' > etc/group
            tar -C \(root)/rootfs -cf \(root)/busybox.tar .
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("building the busybox image failed") }
        var settings = DaemonSettings(dataDirectory: data, socketPath: socket)
        settings.cgroupParent = cgroupParent
        settings.bridge = Self.testBridge
        // -p without an address and -P stay on this machine (dockerd's --ip).
        settings.defaultPublishAddress = "127.0.0.1"
        self.settings = settings
        daemon = Daemon(settings: settings)
        let imported = try shoal(["image", "import", root + "/busybox.tar", "busybox:latest", "--data", data])
        guard imported.status == 0 else { throw TestFailure("image import: \(imported.errors)") }
        try await daemon.start()
    }

    static func with(_ body: (ContainerHost) async throws -> Void) async throws {
        let host = try await ContainerHost()
        do {
            try await body(host)
        } catch {
            await host.close()
            throw error
        }
        await host.close()
    }

    func close() async {
        if let ids = try? ok(["container", "ps", "-a", "-q", "--no-trunc"]) {
            for id in ids.split(separator: "\n") { _ = try? shoal(["container", "rm", "-f", "-v", String(id)]) }
        }
        // A cgroup still busy is tried again later: wait for it (bounded) rather than leave it behind.
        _ = try? daemon.containerEngine().runtime.awaitRemovals(timeout: .seconds(15))
        try? daemon.containerEngine().runtime.removeBridge()
        await daemon.stop()
        for hierarchy in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct",
                          "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpuset", "/sys/fs/cgroup/freezer",
                          "/sys/fs/cgroup/devices", "/sys/fs/cgroup/blkio", "/sys/fs/cgroup/hugetlb"] {
            rmdir(hierarchy + "/" + cgroupParent)
        }
        // A container root a failed test left mounted (its daemon stopped
        // first): unmounted rather than removed through, or left behind.
        let mounts = FileHandle(forReadingAtPath: "/proc/self/mounts")?.readDataToEndOfFile() ?? Data()
        for line in String(decoding: mounts, as: UTF8.self).split(separator: "\n").reversed() {
            let fields = line.split(separator: " ")
            if fields.count > 1, fields[1].hasPrefix(root + "/") { umount2(String(fields[1]), Int32(MNT_DETACH)) }
        }
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Stops the daemon (its containers keep running), runs `whileDown`, and
    /// starts a new daemon on the same data directory and socket.
    func restartDaemon(_ whileDown: () async throws -> Void) async throws {
        await daemon.stop()
        try await whileDown()
        daemon = Daemon(settings: settings)
        try await daemon.start()
    }

    /// Runs `shoal ARGUMENTS` against this daemon.
    func shoal(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String, errors: String) {
        let result = try runToExit(Self.binary!, arguments, environment: ["SHOAL_HOST": "unix://" + socket], input: input)
        return (result.status, result.output, result.error)
    }

    /// Runs `shoal ARGUMENTS`, which must succeed; returns its stdout.
    func ok(_ arguments: [String]) throws -> String {
        let result = try shoal(arguments)
        guard result.status == 0 else { throw TestFailure("shoal \(arguments.joined(separator: " ")) exited \(result.status): \(result.errors)") }
        return result.output
    }

    /// curl's body from `url` (one try, 5 s at most; stderr discarded).
    func curl(_ url: String) throws -> String {
        try runToExit("/usr/bin/curl", ["-s", "-f", "-m", "5", url]).output
    }

    func eventually(_ what: String, timeout: Duration = .seconds(30), _ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? condition()) == true { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        if try condition() { return }
        throw TestFailure("timed out waiting for \(what)")
    }
}


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
    /// The `shoal container run` flags and commands of #5 that the lifecycle
    /// tests do not reach, each checked inside the container or against the
    /// host's cgroup files: real CLI, in-process daemon, busybox containers.
    @Suite("shoal container run flags, restart, logs -f, volume create", .serialized,
           .enabled(if: ContainerHost.available, "needs root, busybox-static and the shoal binary"), .timeLimit(.minutes(5)))
    struct ContainerRunFlagTests {
        @Test("--env-file, -e NAME from the CLI's environment, -w, -u UID:GID and --entrypoint reach the process")
        func processFlags() async throws {
            try await ContainerHost.with { host in
                let envFile = host.root + "/app.env"
                try "# settings\nFROM_FILE=file\n\nOVERRIDDEN=file\n".write(toFile: envFile, atomically: true, encoding: .utf8)
                let result = try host.shoal(["container", "run", "--rm", "--network", "none", "--env-file", envFile, "-e", "OVERRIDDEN=flag", "-e", "PATH",
                                             "-w", "/etc", "-u", "1000:1001", "--entrypoint", "sh", "busybox",
                                             "-c", "echo $FROM_FILE $OVERRIDDEN; echo $PATH; pwd; id -u; id -g"])
                #expect(result.status == 0, "\(result.errors)")
                // -e PATH takes the CLI's own value (the CLI inherits this process's environment).
                let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
                #expect(result.output == "file flag\n\(path)\n/etc\n1000\n1001\n", "\(result.output) \(result.errors)")
                let badFile = try host.shoal(["container", "run", "--env-file", host.root + "/missing.env", "busybox", "true"])
                #expect(badFile.status != 0 && badFile.errors.contains("--env-file"), "\(badFile.errors)")
            }
        }

        @Test("--cpus writes the CPU quota to the container's cgroup and inspect shows it")
        func cpus() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "-d", "--name", "quota", "--network", "none", "--cpus", "0.5", "busybox", "sleep", "1000"])
                #expect(try host.ok(["container", "inspect", "-f", "{{.HostConfig.NanoCpus}}", "quota"]) == "500000000\n")
                let pid = try host.ok(["container", "inspect", "-f", "{{.State.Pid}}", "quota"]).trimmingCharacters(in: .whitespacesAndNewlines)
                let memberships = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8).split(separator: "\n")
                var quota: String?
                for line in memberships {
                    let fields = line.split(separator: ":", maxSplits: 2).map(String.init)
                    guard fields.count == 3 else { continue }
                    if fields[1].split(separator: ",").contains("cpu") {
                        for mount in ["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"] {
                            if let text = try? String(contentsOfFile: mount + fields[2] + "/cpu.cfs_quota_us", encoding: .utf8) {
                                let period = (try? String(contentsOfFile: mount + fields[2] + "/cpu.cfs_period_us", encoding: .utf8)) ?? ""
                                quota = text.trimmingCharacters(in: .whitespacesAndNewlines) + " " + period.trimmingCharacters(in: .whitespacesAndNewlines)
                            }
                        }
                    } else if fields[0] == "0", fields[1].isEmpty, quota == nil,
                              let text = try? String(contentsOfFile: "/sys/fs/cgroup" + fields[2] + "/cpu.max", encoding: .utf8) {
                        quota = text.trimmingCharacters(in: .whitespacesAndNewlines)
                    }
                }
                #expect(quota == "50000 100000", "\(memberships)")
                for amount in ["lots", "nan", "inf"] {
                    let bad = try host.shoal(["container", "run", "--cpus", amount, "busybox", "true"])
                    #expect(bad.status == 1 && bad.errors.contains("--cpus \(amount): give a number"), "\(bad.errors)")
                }
            }
        }

        @Test("--log-opt reaches the container's log configuration (inspect's LogConfig); without it there is none; KEY=VALUE is required")
        func logOptions() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "-d", "--name", "logged", "--network", "none", "--log-opt", "max-size=1k", "--log-opt", "max-file=2",
                                 "busybox", "true"])
                #expect(try host.ok(["container", "inspect", "-f", "{{.HostConfig.LogConfig}}", "logged"]) == "map[max-file:2 max-size:1k]\n")
                _ = try host.ok(["container", "run", "-d", "--name", "plain", "--network", "none", "busybox", "true"])
                #expect(try host.ok(["container", "inspect", "-f", "{{.HostConfig.LogConfig}}", "plain"]) == "map[]\n")
                let bad = try host.shoal(["container", "run", "--rm", "--log-opt", "max-size", "busybox", "true"])
                #expect(bad.status == 1 && bad.errors.contains("--log-opt max-size: give KEY=VALUE"), "\(bad.errors)")
            }
        }

        @Test("restart stops and starts again: a new process, the same container and its log; restart -t bounds the wait")
        func restart() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "-d", "--name", "again", "--network", "none", "busybox", "sh", "-c", "echo started; exec sleep 1000"])
                try await host.eventually("the first start in the log") { try host.ok(["container", "logs", "again"]) == "started\n" }
                let before = try host.ok(["container", "inspect", "-f", "{{.State.Pid}}", "again"])
                #expect(try host.ok(["container", "restart", "-t", "1", "again"]) == "again\n")
                #expect(try host.ok(["container", "inspect", "-f", "{{.State.Status}}", "again"]) == "running\n")
                #expect(try host.ok(["container", "inspect", "-f", "{{.State.Pid}}", "again"]) != before)
                try await host.eventually("the second start in the log") { try host.ok(["container", "logs", "again"]) == "started\nstarted\n" }
                // restart of an exited container starts it.
                _ = try host.ok(["container", "stop", "-t", "0", "again"])
                _ = try host.ok(["container", "restart", "again"])
                #expect(try host.ok(["container", "inspect", "-f", "{{.State.Running}}", "again"]) == "true\n")
                let missing = try host.shoal(["container", "restart", "nobody"])
                #expect(missing.status == 1 && missing.errors.contains("no such container"), "\(missing.errors)")
            }
        }

        @Test("logs --follow streams until the container exits; with --tail it starts from the last lines")
        func logsFollow() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "-d", "--name", "talker", "--network", "none", "busybox",
                                 "sh", "-c", "echo one; echo two; sleep 2; echo three >&2; echo four"])
                let followed = try host.shoal(["container", "logs", "--follow", "talker"])
                #expect(followed.status == 0)
                #expect(followed.output == "one\ntwo\nfour\n" && followed.errors == "three\n", "\(followed)")
                let tailed = try host.shoal(["container", "logs", "-f", "--tail", "2", "talker"])
                #expect(tailed.output == "four\n" && tailed.errors == "three\n", "\(tailed)")
            }
        }

        @Test("volume create (named, with labels, and anonymous), ls, inspect and rm, as tables and --format json")
        func volumeCommands() async throws {
            try await ContainerHost.with { host in
                #expect(try host.ok(["volume", "create", "--label", "team=db", "store"]) == "store\n")
                let anonymous = try host.ok(["volume", "create"]).trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(anonymous.count == 64, "\(anonymous)")
                let table = try host.ok(["volume", "ls"])
                #expect(table.hasPrefix("DRIVER") && table.contains("store") && table.contains(anonymous), "\(table)")
                let listed = try JSONSerialization.jsonObject(with: Data(try host.ok(["volume", "ls", "--format", "json"]).utf8)) as? [[String: Any]]
                #expect(Set(listed?.compactMap { $0["name"] as? String } ?? []) == ["store", anonymous], "\(String(describing: listed))")
                let inspected = try JSONSerialization.jsonObject(with: Data(try host.ok(["volume", "inspect", "store"]).utf8)) as? [[String: Any]]
                #expect((inspected?.first?["labels"] as? [String: String]) == ["team": "db"], "\(String(describing: inspected))")
                _ = try host.ok(["container", "run", "--rm", "--network", "none", "-v", "store:/data", "busybox", "sh", "-c", "echo kept > /data/f"])
                #expect(try host.ok(["container", "run", "--rm", "--network", "none", "-v", "store:/data", "busybox", "cat", "/data/f"]) == "kept\n")
                // As Docker's local driver: creating an existing name gives it back, data kept.
                #expect(try host.ok(["volume", "create", "store"]) == "store\n")
                #expect(try host.ok(["container", "run", "--rm", "--network", "none", "-v", "store:/data", "busybox", "cat", "/data/f"]) == "kept\n")
                #expect(try host.ok(["volume", "rm", "store", anonymous]) == "store\n\(anonymous)\n")
                #expect(try host.ok(["volume", "ls", "-q"]).isEmpty)
                let missing = try host.shoal(["volume", "inspect", "store"])
                #expect(missing.status == 1 && missing.errors.contains("store"), "\(missing.errors)")
            }
        }

        @Test("--format json on the commands that print names, and on wait, logs and exec")
        func jsonEverywhere() async throws {
            try await ContainerHost.with { host in
                func names(_ arguments: [String]) throws -> [String] {
                    try JSONDecoder().decode([String].self, from: Data(try host.ok(["container"] + arguments).utf8))
                }
                _ = try host.ok(["container", "create", "--name", "quiet", "--network", "none", "busybox", "sh", "-c", "echo hi; exec sleep 1000"])
                #expect(try names(["start", "--format", "json", "quiet"]) == ["quiet"])
                #expect(try names(["pause", "--format", "json", "quiet"]) == ["quiet"])
                #expect(try names(["unpause", "--format", "json", "quiet"]) == ["quiet"])
                #expect(try names(["restart", "--format", "json", "-t", "0", "quiet"]) == ["quiet"])
                let exec = try host.shoal(["container", "exec", "--format", "json", "quiet", "sh", "-c", "echo out; echo err >&2; exit 2"])
                #expect(exec.status == 2)
                let reply = try JSONSerialization.jsonObject(with: Data(exec.output.utf8)) as? [String: Any]
                #expect(reply?["exitCode"] as? Int == 2 && reply?["standardOutput"] as? String == "out\n" && reply?["standardError"] as? String == "err\n",
                        "\(exec.output)")
                try await host.eventually("both starts in the log") { try host.ok(["container", "logs", "quiet"]) == "hi\nhi\n" }
                let lines = try host.ok(["container", "logs", "--format", "json", "quiet"]).split(separator: "\n")
                let entries = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
                #expect(entries.map { $0?["log"] } == ["hi\n", "hi\n"] && entries.allSatisfy { $0?["stream"] == "stdout" && $0?["time"] != nil }, "\(lines)")
                #expect(try names(["kill", "--format", "json", "-s", "KILL", "quiet"]) == ["quiet"])
                let waited = try JSONDecoder().decode([ContainerWaitReply].self, from: Data(try host.ok(["container", "wait", "--format", "json", "quiet"]).utf8))
                #expect(waited.map(\.statusCode) == [137])
                #expect(try names(["stop", "--format", "json", "quiet"]) == ["quiet"])
                // A failure is still reported on stderr with status 1; the successes are listed.
                let partly = try host.shoal(["container", "rm", "--format", "json", "quiet", "nobody"])
                #expect(partly.status == 1 && partly.errors.contains("no such container: nobody"), "\(partly.errors)")
                #expect((try? JSONDecoder().decode([String].self, from: Data(partly.output.utf8))) == ["quiet"], "\(partly.output)")
            }
        }

        @Test("stop sends --stop-signal, else the image's STOPSIGNAL, and without -t waits --stop-timeout before SIGKILL")
        func stopSignal() async throws {
            try await ContainerHost.with { host in
                let script = "trap 'echo got-USR1; exit 4' USR1; trap 'echo got-TERM; exit 5' TERM; echo ready; while true; do sleep 0.1; done"
                func stopped(_ name: String) async throws -> String {
                    try await host.eventually("\(name) ready") { try host.ok(["container", "logs", name]).contains("ready") }
                    _ = try host.ok(["container", "stop", name])
                    return try host.ok(["container", "inspect", "-f", "{{.State.ExitCode}}", name]) + (try host.ok(["container", "logs", name]))
                }
                _ = try host.ok(["container", "run", "-d", "--name", "plain", "--network", "none", "busybox", "sh", "-c", script])
                #expect(try await stopped("plain") == "5\nready\ngot-TERM\n")
                _ = try host.ok(["container", "run", "-d", "--name", "flagged", "--network", "none", "--stop-signal", "SIGUSR1", "busybox", "sh", "-c", script])
                #expect(try await stopped("flagged") == "4\nready\ngot-USR1\n")
                // The image's STOPSIGNAL (set here by commit -c) when no flag is given.
                _ = try host.ok(["container", "commit", "-c", "STOPSIGNAL USR1", "plain", "busybox:usr1"])
                _ = try host.ok(["container", "run", "-d", "--name", "imaged", "--network", "none", "busybox:usr1", "sh", "-c", script])
                #expect(try await stopped("imaged") == "4\nready\ngot-USR1\n")
                // A process that ignores the signal is killed once --stop-timeout passes.
                _ = try host.ok(["container", "run", "-d", "--name", "stubborn", "--network", "none", "--stop-timeout", "1", "busybox",
                                 "sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"])
                #expect(try await stopped("stubborn") == "137\nready\n")
                for (arguments, fragment) in [(["--stop-signal", "NOPE"], "--stop-signal"), (["--stop-timeout", "soon"], "--stop-timeout"),
                                              (["--stop-timeout", "-1"], "--stop-timeout")] {
                    let result = try host.shoal(["container", "create"] + arguments + ["busybox", "true"])
                    #expect(result.status != 0 && result.errors.contains(fragment), "\(arguments): \(result.errors)")
                }
            }
        }
    }
}

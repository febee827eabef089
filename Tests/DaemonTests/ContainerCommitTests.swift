import Daemon
import Foundation
import Testing

// Nested in ContainerCommandTests: its .serialized trait then covers these
// tests too, so no two ContainerHost daemons (one bridge per test process)
// run at once even when suites run in parallel.
extension ContainerCommandTests {
    /// `shoal container commit` and what images bring to a container (their
    /// HEALTHCHECK and VOLUME), through the real CLI against a daemon, with
    /// real containers from the busybox image.
    @Suite("shoal container commit, image HEALTHCHECK and VOLUME", .serialized,
           .enabled(if: ContainerHost.available, "needs root, busybox-static and the shoal binary"), .timeLimit(.minutes(5)))
    struct ContainerCommitTests {
        @Test("commit makes the writable layer an image: image ls shows it, run sees the added file and the whiteout, the config keeps the container's")
        func commitAndRun() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "--name", "changed", "-e", "FROM_RUN=yes", "busybox",
                                 "sh", "-c", "echo new > /made; rm /etc/group"])
                let id = try host.ok(["container", "commit", "-m", "made a file", "-a", "Ada <ada@example.com>", "-c", "ENV EXTRA=1",
                                      "changed", "committed:v1"]).trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(id.hasPrefix("sha256:") && id.count == 71, "\(id)")
                let images = try host.ok(["image", "ls", "--data", host.data])
                #expect(images.contains("committed:v1") && images.contains(id), "\(images)")
                let inspected = try host.ok(["image", "inspect", "committed:v1", "--data", host.data])
                #expect(inspected.contains("made a file") && inspected.contains("Ada <ada@example.com>"), "\(inspected)")
                #expect(inspected.contains(#""Cmd":["sh","-c","echo new > \/made; rm \/etc\/group"]"#)
                        || inspected.contains(#""Cmd":["sh","-c","echo new > /made; rm /etc/group"]"#), "the container's command: \(inspected)")

                let seen = try host.shoal(["container", "run", "--rm", "committed:v1",
                                           "sh", "-c", "cat /made; test -e /etc/group || echo group-gone; test -e /etc/passwd && echo passwd-kept; echo $FROM_RUN $EXTRA"])
                #expect(seen.status == 0 && seen.output == "new\ngroup-gone\npasswd-kept\nyes 1\n", "\(seen)")
                let diff = try host.ok(["container", "diff", "changed"])
                #expect(diff.contains("A /made"), "the container itself is untouched: \(diff)")

                // A commit of the commit stacks a third layer; CMD from -c is what runs by default.
                _ = try host.ok(["container", "run", "--name", "second", "committed:v1", "sh", "-c", "echo more >> /made"])
                _ = try host.ok(["container", "commit", "-c", #"CMD ["cat", "/made"]"#, "second", "committed:v2"])
                #expect(try host.ok(["container", "run", "--rm", "committed:v2"]) == "new\nmore\n")
                let history = try host.ok(["image", "history", "committed:v2", "--data", host.data, "--format", "json"])
                #expect(history.components(separatedBy: "\"CreatedBy\"").count - 1 == 3, "\(history)")

                // Without a name: stored untagged, listed by nobody.
                let untagged = try host.ok(["container", "commit", "changed"]).trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(untagged.hasPrefix("sha256:"))
                #expect(try host.ok(["image", "ls", "--data", host.data]) .contains(untagged) == false)
            }
        }

        @Test("a running container is paused while committed and runs on afterwards; --pause=false commits it live")
        func commitRunning() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "-d", "--name", "live", "busybox", "sh", "-c", "echo up > /live; exec sleep 1000"])
                try await host.eventually("the file written") { try host.shoal(["container", "exec", "live", "test", "-e", "/live"]).status == 0 }
                _ = try host.ok(["container", "commit", "live", "live:paused"])
                #expect(try host.ok(["container", "inspect", "-f", "{{.State.Status}}", "live"]) == "running\n")
                _ = try host.ok(["container", "commit", "--pause=false", "live", "live:unpaused"])
                #expect(try host.ok(["container", "run", "--rm", "live:paused", "cat", "/live"]) == "up\n")
                #expect(try host.ok(["container", "run", "--rm", "live:unpaused", "cat", "/live"]) == "up\n")
                // A paused container stays paused.
                _ = try host.ok(["container", "pause", "live"])
                _ = try host.ok(["container", "commit", "live", "live:frozen"])
                #expect(try host.ok(["container", "inspect", "-f", "{{.State.Status}}", "live"]) == "paused\n")
            }
        }

        @Test("commit refuses unknown containers, bad names and bad changes, and tags nothing")
        func commitErrors() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "--name", "base", "busybox", "touch", "/x"])
                let before = try host.ok(["image", "ls", "--data", host.data])
                for (arguments, fragment) in [
                    (["no-such", "x:1"], "no such container: no-such"),
                    (["base", "Bad Name!"], "invalid reference"),
                    (["base", "busybox@sha256:" + String(repeating: "a", count: 64)], "names a digest"),
                    (["-c", "RUN true", "base", "x:1"], "RUN cannot be applied"),
                    (["-c", "HEALTHCHECK --interval=soon CMD true", "base", "x:1"], "must be a duration"),
                    (["base", "x:1", "extra"], "usage: shoal container commit"),
                    ([], "usage: shoal container commit"),
                    (["--pause=maybe", "base", "x:1"], "takes no value"),
                ] {
                    let result = try host.shoal(["container", "commit"] + arguments)
                    #expect(result.status == 1 && result.errors.contains(fragment), "\(arguments): \(result.errors)")
                }
                #expect(try host.ok(["image", "ls", "--data", host.data]) == before)
            }
        }

        @Test("an image's HEALTHCHECK runs unless --no-healthcheck; --health-cmd overrides its command and keeps its timing")
        func imageHealthcheck() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["image", "import", host.root + "/busybox.tar", "checked:1", "--data", host.data,
                                 "--change", "HEALTHCHECK --interval=100ms --retries=2 CMD test -e /tmp/ready"])
                _ = try host.ok(["container", "run", "-d", "--name", "ready", "checked:1", "sh", "-c", "sleep 0.3; touch /tmp/ready; exec sleep 1000"])
                try await host.eventually("healthy from the image's check") {
                    try host.ok(["container", "inspect", "-f", "{{.State.Health.Status}}", "ready"]) == "healthy\n"
                }
                _ = try host.ok(["container", "run", "-d", "--name", "unchecked", "--no-healthcheck", "checked:1", "sleep", "1000"])
                let json = try host.ok(["container", "inspect", "unchecked"])
                let views = try JSONDecoder().decode([ContainerInspectView].self, from: Data(json.utf8))
                #expect(views.first?.State.Health == nil && views.first?.State.Running == true)
                // --health-cmd replaces the command; the image's 100 ms interval and 2 retries still apply.
                _ = try host.ok(["container", "run", "-d", "--name", "failing", "--health-cmd", "false", "checked:1", "sleep", "1000"])
                try await host.eventually("unhealthy from --health-cmd") {
                    try host.ok(["container", "inspect", "-f", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "failing"]).hasPrefix("unhealthy")
                }
                let conflict = try host.shoal(["container", "run", "--no-healthcheck", "--health-cmd", "true", "checked:1", "true"])
                #expect(conflict.status == 1 && conflict.errors.contains("conflicts"), "\(conflict.errors)")
                // HEALTHCHECK NONE in a commit turns the parent's check off.
                _ = try host.ok(["container", "commit", "-c", "HEALTHCHECK NONE", "ready", "unchecked:1"])
                _ = try host.ok(["container", "run", "-d", "--name", "none", "unchecked:1", "sleep", "1000"])
                let noneView = try JSONDecoder().decode([ContainerInspectView].self, from: Data(try host.ok(["container", "inspect", "none"]).utf8))
                #expect(noneView.first?.State.Health == nil)
            }
        }

        @Test("an image's VOLUME gets an anonymous volume (kept by rm, removed by rm -v), seeded with the image's files; -v on the same path replaces it")
        func imageVolumes() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["image", "import", host.root + "/busybox.tar", "withvolume:1", "--data", host.data, "--change", "VOLUME /data /cache"])
                _ = try host.ok(["container", "run", "--name", "writer", "withvolume:1", "sh", "-c", "echo kept > /data/file"])
                let volumes = try host.ok(["volume", "ls", "-q"]).split(separator: "\n").map(String.init)
                #expect(volumes.count == 2 && volumes.allSatisfy { $0.count == 64 }, "\(volumes)")
                let mounts = try host.ok(["container", "inspect", "-f", "{{json .Mounts}}", "writer"])
                #expect(mounts.contains("\"Destination\":\"/data\"") && mounts.contains("\"Destination\":\"/cache\""), "\(mounts)")
                // The file went to the volume, not the writable layer.
                #expect(!(try host.ok(["container", "diff", "writer"]).contains("/data/file")))
                _ = try host.ok(["container", "rm", "-v", "writer"])
                #expect(try host.ok(["volume", "ls", "-q"]).isEmpty)

                _ = try host.ok(["container", "run", "--name", "named", "-v", "mine:/data", "withvolume:1", "sh", "-c", "echo x > /data/f"])
                let afterNamed = try host.ok(["volume", "ls", "-q"]).split(separator: "\n").map(String.init)
                #expect(afterNamed.contains("mine") && afterNamed.count == 2, "only /cache gets an anonymous volume: \(afterNamed)")
                _ = try host.ok(["container", "rm", "named"])
                #expect(try host.ok(["volume", "ls", "-q"]).split(separator: "\n").count == 2, "rm without -v keeps volumes")

                // A new, empty volume starts with the image's files at its path; a volume with files keeps its own.
                _ = try host.ok(["container", "run", "--name", "seeder", "busybox", "sh", "-c", "mkdir -p /seeded/sub && echo seed > /seeded/sub/file && chown 7:7 /seeded/sub/file"])
                _ = try host.ok(["container", "commit", "-c", "VOLUME /seeded", "seeder", "seeded:1"])
                #expect(try host.ok(["container", "run", "--rm", "seeded:1", "stat", "-c", "%u %n", "/seeded/sub/file"]) == "7 /seeded/sub/file\n")
                #expect(try host.ok(["container", "run", "--rm", "-v", "fresh:/seeded", "seeded:1", "cat", "/seeded/sub/file"]) == "seed\n")
                _ = try host.ok(["container", "run", "--rm", "-v", "used:/data", "busybox", "touch", "/data/mine"])
                #expect(try host.ok(["container", "run", "--rm", "-v", "used:/seeded", "seeded:1", "ls", "/seeded"]) == "mine\n")
            }
        }
    }
}

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Nested in ContainerCommandTests: its .serialized trait then covers these
// tests too, so no two ContainerHost daemons (one bridge per test process)
// run at once even when suites run in parallel.
extension ContainerCommandTests {
    /// `shoal container cp` through the real CLI against a daemon: files and
    /// directories both ways, tar streams on stdin and stdout, running and
    /// stopped containers, and symbolic links that must never reach the host.
    @Suite("shoal container cp", .serialized, .enabled(if: ContainerHost.available, "needs root, busybox-static and the shoal binary"),
           .timeLimit(.minutes(5)))
    struct ContainerCopyTests {
        static func read(_ path: String) -> String? {
            FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
        }

        static func write(_ text: String, to path: String) throws {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: false, encoding: .utf8)
        }

        /// `tar ARGUMENTS` run by /bin/sh; its stdout.
        static func tar(_ script: String) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }

        @Test("out of and into a running container: files, directories, SRC/., renames, - on stdin and stdout")
        func runningContainer() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "-d", "--name", "box", "busybox", "sh", "-c",
                                 "mkdir -p /data/sub && echo hi > /data/sub/f && ln -s /etc/passwd /data/link && exec sleep 1000"])
                try await host.eventually("the files made") { try host.shoal(["container", "exec", "box", "test", "-L", "/data/link"]).status == 0 }
                let out = host.root + "/out"
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)

                #expect(try host.ok(["container", "cp", "box:/data/sub/f", out + "/renamed.txt"]) == "")
                #expect(Self.read(out + "/renamed.txt") == "hi\n")
                _ = try host.ok(["container", "cp", "box:/data", out])
                #expect(Self.read(out + "/data/sub/f") == "hi\n")
                // The link comes out as a link, not as what it points to.
                #expect(try FileManager.default.destinationOfSymbolicLink(atPath: out + "/data/link") == "/etc/passwd")
                _ = try host.ok(["container", "cp", "box:/data/.", out + "/contents"])
                #expect(Self.read(out + "/contents/sub/f") == "hi\n")
                // Onto an existing directory: SRC/. copies the contents, SRC the directory itself.
                try FileManager.default.createDirectory(atPath: out + "/existing", withIntermediateDirectories: true)
                _ = try host.ok(["container", "cp", "box:/data/.", out + "/existing"])
                _ = try host.ok(["container", "cp", "box:/data/sub", out + "/existing"])
                #expect(Self.read(out + "/existing/sub/f") == "hi\n" && FileManager.default.fileExists(atPath: out + "/existing/link"))
                #expect(!FileManager.default.fileExists(atPath: out + "/existing/data"))
                // -L follows the link inside the container: its passwd, not the host's.
                _ = try host.ok(["container", "cp", "-L", "box:/data/link", out + "/passwd"])
                #expect(Self.read(out + "/passwd") == "root:x:0:0:root:/root:/bin/sh\n")

                try Self.write("into a dir\n", to: out + "/in.txt")
                try Self.write("a\n", to: out + "/tree/a")
                try Self.write("b\n", to: out + "/tree/deeper/b")
                _ = try host.ok(["container", "cp", out + "/in.txt", "box:/tmp/"])
                _ = try host.ok(["container", "cp", out + "/tree", "box:/tmp/newtree"])
                _ = try host.ok(["container", "cp", out + "/tree/.", "box:/root"])
                #expect(try host.ok(["container", "exec", "box", "ls", "/root"]) == "a\ndeeper\n")
                _ = try host.ok(["container", "cp", out + "/in.txt", "box:/tmp/named.txt"])
                #expect(try host.ok(["container", "exec", "box", "cat", "/tmp/in.txt", "/tmp/newtree/a", "/tmp/newtree/deeper/b", "/tmp/named.txt"])
                        == "into a dir\na\nb\ninto a dir\n")
                // Owned by root unless -a keeps the local owner.
                chown(out + "/in.txt", 1234, 1234)
                _ = try host.ok(["container", "cp", out + "/in.txt", "box:/tmp/root-owned"])
                _ = try host.ok(["container", "cp", "-a", out + "/in.txt", "box:/tmp/kept-owner"])
                #expect(try host.ok(["container", "exec", "box", "stat", "-c", "%u:%g", "/tmp/root-owned", "/tmp/kept-owner"]) == "0:0\n1234:1234\n")

                // - : a tar on stdout, and one on stdin.
                let streamed = try host.shoal(["container", "cp", "box:/data/sub", "-"])
                #expect(streamed.status == 0)
                try Data(streamed.output.utf8).write(to: URL(fileURLWithPath: host.root + "/streamed.tar"))
                #expect(try Self.tar("tar -tf \(host.root)/streamed.tar").split(separator: "\n").map(String.init) == ["sub/", "sub/f"])
                let archive = try Self.tar("cd \(out)/tree && tar -cf - a deeper")
                let piped = try host.shoal(["container", "cp", "-", "box:/tmp"], input: archive)
                #expect(piped.status == 0, "\(piped.errors)")
                #expect(try host.ok(["container", "exec", "box", "cat", "/tmp/a", "/tmp/deeper/b"]) == "a\nb\n")
            }
        }

        @Test("symbolic links inside the container resolve inside it: copies never read or write the host's files")
        func linksStayInside() async throws {
            try await ContainerHost.with { host in
                let hostPasswd = Self.read("/etc/passwd")
                _ = try host.ok(["container", "run", "-d", "--name", "trap", "busybox", "sh", "-c",
                                 "mkdir /data && ln -s /etc/passwd /data/passwd && ln -s /etc /data/etc && ln -s ../../../../../../../etc /data/up && exec sleep 1000"])
                try await host.eventually("the links made") { try host.shoal(["container", "exec", "trap", "test", "-L", "/data/up"]).status == 0 }
                let local = host.root + "/local"
                try Self.write("planted\n", to: local + "/planted")
                let marker = "shoal-cp-escape-\(getpid())"
                try Self.write("planted\n", to: local + "/" + marker)

                // Writing through a link to a file replaces the container's file.
                _ = try host.ok(["container", "cp", local + "/planted", "trap:/data/passwd"])
                #expect(Self.read("/etc/passwd") == hostPasswd)
                #expect(try host.ok(["container", "exec", "trap", "cat", "/etc/passwd"]) == "planted\n")
                // Through a link to a directory, absolute or climbing with ..: the container's /etc.
                _ = try host.ok(["container", "cp", local + "/" + marker, "trap:/data/etc/"])
                _ = try host.ok(["container", "cp", local + "/" + marker, "trap:/data/up/" + marker + "-up"])
                #expect(!FileManager.default.fileExists(atPath: "/etc/" + marker))
                #expect(!FileManager.default.fileExists(atPath: "/etc/" + marker + "-up"))
                #expect(try host.ok(["container", "exec", "trap", "cat", "/etc/" + marker, "/etc/" + marker + "-up"]) == "planted\nplanted\n")
                // Reading through the links: the container's files.
                _ = try host.ok(["container", "cp", "-L", "trap:/data/passwd", local + "/read"])
                #expect(Self.read(local + "/read") == "planted\n")
                _ = try host.ok(["container", "cp", "trap:/data/up/group", local + "/group"])
                #expect(Self.read(local + "/group") == "root:x:0:\n")
            }
        }

        @Test("a stopped container: copies in and out through its layers and volumes, and it starts afterwards")
        func stoppedContainer() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "--name", "done", "-v", "vol:/vol", "busybox", "sh", "-c",
                                 "echo before > /f; echo in-volume > /vol/v; ln -sf /etc/group /leak"])
                let local = host.root + "/local"
                try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
                _ = try host.ok(["container", "cp", "done:/f", local + "/f"])
                #expect(Self.read(local + "/f") == "before\n")
                _ = try host.ok(["container", "cp", "done:/vol/v", local + "/v"])
                #expect(Self.read(local + "/v") == "in-volume\n")
                _ = try host.ok(["container", "cp", "-L", "done:/leak", local + "/leak"])
                #expect(Self.read(local + "/leak") == "root:x:0:\n")
                try Self.write("added\n", to: local + "/new")
                _ = try host.ok(["container", "cp", local + "/new", "done:/new"])
                _ = try host.ok(["container", "cp", local + "/new", "done:/vol/new"])
                #expect(try host.ok(["container", "diff", "done"]).contains("A /new"))
                // Nothing stays mounted: the container starts and sees the files.
                let again = try host.shoal(["container", "start", "-a", "done"])
                #expect(again.status == 0, "\(again.errors)")
                _ = try host.ok(["container", "run", "--rm", "-v", "vol:/vol", "busybox", "cat", "/vol/new"])
                // Read to its end: String(contentsOfFile:) stops at one page of a /proc file.
                let mounts = String(decoding: FileHandle(forReadingAtPath: "/proc/self/mountinfo")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
                #expect(!mounts.contains("copy-root"), "\(mounts)")
            }
        }

        @Test("bad input gets a clear error and copies nothing")
        func errors() async throws {
            try await ContainerHost.with { host in
                _ = try host.ok(["container", "run", "-d", "--name", "box", "busybox", "sh", "-c", "mkdir /dir && exec sleep 1000"])
                let local = host.root + "/local"
                try Self.write("x\n", to: local + "/file")
                try Self.write("y\n", to: local + "/dir/y")
                for (arguments, fragment) in [
                    (["box:/nope", local + "/x"], "no such file or directory in container box: /nope"),
                    (["nosuch:/etc/passwd", local + "/x"], "no such container: nosuch"),
                    ([local + "/dir", "box:/etc/passwd"], "cannot copy a directory onto the file"),
                    ([local + "/file", "box:/missing/"], "does not exist"),
                    ([local + "/file", "box:/missing/deeper/x"], "no such file or directory in container box: /missing/deeper"),
                    (["box:/dir", local + "/file"], "cannot copy a directory onto the file"),
                    (["box:/etc/passwd", local + "/nodir/x"], "no such directory"),
                    ([local + "/no-such-file", "box:/tmp"], "cannot read"),
                    ([local + "/file", local + "/other"], "one side must be CONTAINER:PATH"),
                    (["box:/a", "box:/b"], "between containers"),
                    (["box:/etc/passwd"], "usage: shoal container cp"),
                ] {
                    let result = try host.shoal(["container", "cp"] + arguments)
                    #expect(result.status == 1 && result.errors.contains(fragment), "\(arguments): \(result.errors)")
                }
                let notTar = try host.shoal(["container", "cp", "-", "box:/tmp"], input: "this is not a tar archive, just some text long enough to fill a header block")
                #expect(notTar.status == 1 && notTar.errors.contains("tar"), "\(notTar.errors)")
                #expect(!FileManager.default.fileExists(atPath: local + "/x") && !FileManager.default.fileExists(atPath: local + "/other"))
            }
        }
    }
}

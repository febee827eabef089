import Foundation
import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Running containers", .serialized, .enabled(if: TestImage.available, "needs root and busybox-static"),
       .timeLimit(.minutes(5)))
struct ContainerRunTests {
    @Test func echoHelloReachesTheLog() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("hello", ["echo", "hello"])
        #expect(result.status == .exited(0))
        #expect(result.output == "hello\n")
        #expect(result.error == "")
        #expect(result.state.status == .exited)
        #expect(result.state.oomKilled == false)
    }

    @Test func exitCodesAndStandardError() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("code", ["sh", "-c", "echo oops >&2; exit 3"])
        #expect(result.status == .exited(3))
        #expect(result.error == "oops\n")
        #expect(result.output == "")
    }

    @Test func signalDeathIsReported() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let container = try fixture.runtime.run(fixture.spec("sleeper", ["sleep", "1000"]))
        #expect(container.state.status == .running)
        try fixture.runtime.kill("sleeper", signal: SIGKILL)
        let status = container.wait(timeout: .seconds(20))
        #expect(status == .signaled(SIGKILL))
        #expect(status?.code == 137)
        // A child of init killed by a signal: init reports 128+n as a code.
        let nested = try fixture.run("nested", ["sh", "-c", "sh -c 'kill -SEGV $$'; exit $?"])
        #expect(nested.status == .exited(128 + SIGSEGV))
    }

    @Test func environmentAndWorkingDirectory() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("env", ["sh", "-c", "echo $GREETING; pwd; echo $PATH; echo $HOME"]) { spec in
            spec.environment = ["GREETING=hi there"]
            spec.workingDirectory = "/tmp"
        }
        #expect(result.output == "hi there\n/tmp\n\(ContainerRuntime.defaultPath)\n/root\n")
    }

    @Test func executableNotFoundIsATypedErrorAndLeavesNothing() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let mountsBefore = hostMountPoints()
        #expect(throws: RuntimeError.executableNotFound("nosuch")) {
            try fixture.runtime.run(fixture.spec("missing", ["nosuch", "arg"]))
        }
        #expect(RuntimeError.executableNotFound("nosuch").description.hasPrefix("executable file not found in $PATH: nosuch"))
        let state = try #require(fixture.runtime.container("missing")?.state)
        #expect(state.status == .exited)
        #expect(state.exitStatus == .exited(127))
        #expect(state.startError?.contains("executable file not found in $PATH: nosuch") == true)
        for directory in fixture.cgroupDirectories("missing") {
            #expect(!FileManager.default.fileExists(atPath: directory), "cgroup left behind: \(directory)")
        }
        #expect(hostMountPoints() == mountsBefore)
        #expect(!hostMountPoints().contains { $0.hasPrefix(fixture.rootfs) })

        #expect(throws: RuntimeError.executableNotFound("/bin/nosuch")) {
            try fixture.runtime.run(fixture.spec("missing-path", ["/bin/nosuch"]))
        }
        // exec does not create a missing working directory (Docker's does not either).
        _ = try fixture.runtime.run(fixture.spec("bad-cwd", ["sleep", "100"]))
        defer { _ = try? fixture.runtime.stop("bad-cwd", gracePeriod: .zero) }
        #expect(throws: RuntimeError.workingDirectoryNotFound("/nowhere")) {
            try fixture.runtime.exec("bad-cwd", ExecSpec(command: ["true"], workingDirectory: "/nowhere"))
        }
    }

    /// `-w` to a directory the image lacks: created (with its parents) as
    /// Docker and runc do, owned by the container's root, mode 0755, even
    /// when the process runs as another user; a path through a file fails.
    @Test func aMissingWorkingDirectoryIsCreated() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let base = fixture.stateDirectory + "/overlay"
        let root = RootFilesystem.overlay(lowerDirectories: [fixture.rootfs], upperDirectory: base + "/upper",
                                          workDirectory: base + "/work", mountPoint: base + "/merged")
        let result = try fixture.run("made", ["sh", "-c", "pwd; stat -c '%u:%g %a' /srv/app/data /srv/app /srv; id -u; touch ok 2>/dev/null || echo denied"]) {
            $0.rootFilesystem = root
            $0.workingDirectory = "/srv/app/data"
            $0.user = "app"
        }
        #expect(result.status == .exited(0), "\(result.error)")
        #expect(result.output == "/srv/app/data\n0:0 755\n0:0 755\n0:0 755\n1000\ndenied\n", "\(result.output)")
        #expect(FileManager.default.fileExists(atPath: base + "/upper/srv/app/data"), "made in the container's writable layer")
        #expect(!FileManager.default.fileExists(atPath: fixture.rootfs + "/srv"), "the image is untouched")

        let throughFile = #expect(throws: RuntimeError.self) {
            try fixture.runtime.run(fixture.spec("file-cwd", ["true"]) {
                $0.rootFilesystem = .overlay(lowerDirectories: [fixture.rootfs], upperDirectory: base + "2/upper",
                                             workDirectory: base + "2/work", mountPoint: base + "2/merged")
                $0.workingDirectory = "/etc/passwd/sub"
            })
        }
        #expect("\(throughFile.map { "\($0)" } ?? "")".contains("/etc/passwd/sub"), "\(String(describing: throughFile))")
    }

    @Test func unknownUserIsRejectedBeforeSpawning() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        #expect(throws: RuntimeError.noSuchUser("bob")) {
            try fixture.runtime.create(fixture.spec("bob", ["id"]) { $0.user = "bob" })
        }
        #expect(RuntimeError.noSuchUser("bob").description.hasPrefix("no such user: bob"))
        #expect(fixture.runtime.container("bob") == nil)
    }

    @Test func runsAsUserFromTheImage() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let app = try fixture.run("app", ["sh", "-c", "id; echo $HOME; grep -E 'Cap(Eff|Prm|Bnd)' /proc/self/status"]) {
            $0.user = "app"
        }
        #expect(app.status == .exited(0))
        #expect(app.output.contains("uid=1000(app) gid=1000(app)"))
        #expect(app.output.contains("50(staff)"))
        #expect(app.output.contains("/home/app\n"))
        #expect(app.output.contains("CapEff:\t0000000000000000"))
        #expect(app.output.contains("CapPrm:\t0000000000000000"))
        #expect(app.output.contains("CapBnd:\t00000000a80425fb"))

        let nobody = try fixture.run("nobody", ["id", "-u"]) { $0.user = "nobody" }
        #expect(nobody.output == "65534\n")
        let numeric = try fixture.run("numeric", ["id"]) { $0.user = "4242:50" }
        #expect(numeric.output.hasPrefix("uid=4242 gid=50(staff)"))
    }

    @Test func overlayRootWritesOnlyToTheUpperDirectory() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let base = fixture.stateDirectory + "/overlay"
        let upper = base + "/upper", work = base + "/work", merged = base + "/merged"
        let result = try fixture.run("layered", ["sh", "-c", "echo data > /created && cat /created && head -1 /etc/passwd"]) {
            $0.rootFilesystem = .overlay(lowerDirectories: [fixture.rootfs], upperDirectory: upper, workDirectory: work, mountPoint: merged)
        }
        #expect(result.status == .exited(0))
        #expect(result.output == "data\nroot:x:0:0:root:/root:/bin/sh\n")
        #expect((try? String(contentsOfFile: upper + "/created", encoding: .utf8)) == "data\n")
        #expect(!FileManager.default.fileExists(atPath: fixture.rootfs + "/created"))
        #expect(fixture.eventually { !hostMountPoints().contains(merged) }, "the overlay root is unmounted once the container has exited")
    }

    /// The runtime mounts an overlay root itself (beside the start's other
    /// host steps) and keeps it while the container runs, as Docker does;
    /// it goes when the container exits, and a start that fails leaves none.
    @Test func overlayRootIsMountedOnTheHostOnlyWhileTheContainerRuns() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let base = fixture.stateDirectory + "/overlay-running"
        let merged = base + "/merged"
        let container = try fixture.runtime.run(fixture.spec("running", ["sleep", "30"]) {
            $0.rootFilesystem = .overlay(lowerDirectories: [fixture.rootfs], upperDirectory: base + "/upper", workDirectory: base + "/work", mountPoint: merged)
        })
        #expect(hostMountPoints().filter { $0 == merged }.count == 1)
        #expect(try fixture.runtime.stop("running", signal: SIGKILL, gracePeriod: .zero) == .signaled(SIGKILL))
        #expect(container.wait(timeout: .seconds(60)) == .signaled(SIGKILL))
        // Its layers mount for a copy at once, whether or not the root is unmounted yet.
        let passwd = try fixture.runtime.withRootDirectory("running") { root in
            var info = stat()
            return fstatat(root, "etc/passwd", &info, 0) == 0
        }
        #expect(passwd)
        #expect(fixture.eventually { !hostMountPoints().contains(merged) })

        #expect(throws: RuntimeError.executableNotFound("nosuch")) {
            try fixture.runtime.run(fixture.spec("failing", ["nosuch"]) {
                $0.rootFilesystem = .overlay(lowerDirectories: [fixture.rootfs], upperDirectory: base + "/upper2", workDirectory: base + "/work2", mountPoint: base + "/merged2")
            })
        }
        #expect(!hostMountPoints().contains(base + "/merged2"))
        // Started again, the same writable layer mounts again (nothing stacked).
        try fixture.runtime.prepareRestart("running")
        try fixture.runtime.start("running")
        #expect(hostMountPoints().filter { $0 == merged }.count == 1)
        try fixture.runtime.delete("running", force: true)
        #expect(!hostMountPoints().contains(merged))
    }

    /// With warm root mounts, the first start of an image mounts its own
    /// root and the pool fills for that image; the next starts take a
    /// mounted root (their writable layer swapped in), write only to their
    /// own upper directory, and leave nothing mounted once they have exited.
    /// Detaching the runtime unmounts the pool.
    @Test func warmRootMountsServeTheNextStartsOfTheSameImage() throws {
        let fixture = try RuntimeFixture { $0.warmRootMounts = 2 }
        defer { fixture.close() }
        let pool = fixture.stateDirectory + "/root-pool"
        func pooledMounts() -> Int { hostMountPoints().filter { $0.hasPrefix(pool + "/") }.count }
        func run(_ id: String) throws -> (status: Runtime.ExitStatus?, output: String, upper: String) {
            let base = fixture.stateDirectory + "/layers/" + id
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            let result = try fixture.run(id, ["sh", "-c", "cat /marker 2>/dev/null; echo \(id) > /marker; cat /marker"]) {
                $0.rootFilesystem = .overlay(lowerDirectories: [fixture.rootfs], upperDirectory: base + "/upper", workDirectory: base + "/work", mountPoint: base + "/merged")
            }
            return (result.status, result.output, base + "/upper")
        }
        let first = try run("first")
        #expect(first.status == .exited(0) && first.output == "first\n", "\(first.output)")
        #expect(fixture.eventually { pooledMounts() == 2 }, "the pool fills for the image started last")
        for id in ["second", "third", "fourth"] {
            let next = try run(id)
            #expect(next.status == .exited(0) && next.output == "\(id)\n", "nothing of another container's writes: \(next.output)")
            #expect((try? String(contentsOfFile: next.upper + "/marker", encoding: .utf8)) == "\(id)\n", "its writes are in its own upper directory")
            #expect(fixture.eventually { !hostMountPoints().contains { $0.hasPrefix(fixture.stateDirectory + "/layers/") } })
        }
        #expect(fixture.eventually { pooledMounts() == 2 })
        // The image removed and made again at the same path: no pooled root of the old one serves it.
        // A small image of its own (busybox, sh, cat, the user files): the shared test image holds what other tests wrote.
        let lower = fixture.stateDirectory + "/image"
        func makeImage() throws {
            let fileManager = FileManager.default
            try fileManager.createDirectory(atPath: lower + "/bin", withIntermediateDirectories: true)
            try fileManager.createDirectory(atPath: lower + "/etc", withIntermediateDirectories: true)
            try fileManager.copyItem(atPath: fixture.rootfs + "/bin/busybox", toPath: lower + "/bin/busybox")
            for applet in ["sh", "cat", "echo"] { try fileManager.createSymbolicLink(atPath: lower + "/bin/" + applet, withDestinationPath: "busybox") }
            for file in ["etc/passwd", "etc/group"] { try fileManager.copyItem(atPath: fixture.rootfs + "/" + file, toPath: lower + "/" + file) }
        }
        try makeImage()
        func runOn(_ id: String) throws -> String {
            let base = fixture.stateDirectory + "/layers/" + id
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            return try fixture.run(id, ["sh", "-c", "cat /version 2>/dev/null || echo none"]) {
                $0.rootFilesystem = .overlay(lowerDirectories: [lower], upperDirectory: base + "/upper", workDirectory: base + "/work", mountPoint: base + "/merged")
            }.output
        }
        #expect(try runOn("old-image") == "none\n")
        #expect(fixture.eventually { pooledMounts() == 2 })
        try FileManager.default.moveItem(atPath: lower, toPath: lower + ".removed")
        try makeImage()
        try "2\n".write(toFile: lower + "/version", atomically: false, encoding: .utf8)
        #expect(try runOn("new-image") == "2\n")
        fixture.runtime.detach()
        #expect(pooledMounts() == 0, "the pool's roots go with the runtime")
        // A runtime killed with its pool mounted: the next one on its state, pooling or not, removes it.
        let leftover = pool + "/killed/merged"
        try FileManager.default.createDirectory(atPath: leftover, withIntermediateDirectories: true)
        #expect(mount("tmpfs", leftover, "tmpfs", 0, "size=1m") == 0)
        #expect(pooledMounts() == 1)
        let next = try ContainerRuntime(configuration: .init(stateDirectory: fixture.stateDirectory, cgroupParent: fixture.cgroupParent, bridge: fixture.bridge))
        defer { next.detach() }
        #expect(pooledMounts() == 0 && !FileManager.default.fileExists(atPath: pool + "/killed"))
    }

    /// The files and directories the runtime mounts onto come from its
    /// shared mount-point layer: the writable layer holds only what the
    /// process wrote (no /etc copied up, no hosts, hostname or resolv.conf
    /// made there), and the bound files still show their content.
    @Test func mountPointsComeFromTheSharedLayerNotTheWritableOne() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let base = fixture.stateDirectory + "/overlay-mount-points"
        let upper = base + "/upper"
        let result = try fixture.run("mount-points", ["sh", "-c", "echo data > /created; cat /etc/hostname; grep -c localhost /etc/hosts"]) {
            $0.rootFilesystem = .overlay(lowerDirectories: [fixture.rootfs], upperDirectory: upper, workDirectory: base + "/work", mountPoint: base + "/merged")
            $0.hostname = "points"
        }
        #expect(result.status == .exited(0), "\(result.error)")
        #expect(result.output.hasPrefix("points\n"), "\(result.output)")
        #expect(result.output != "points\n0\n", "the hosts file is bound over the empty mount point")
        #expect(try FileManager.default.contentsOfDirectory(atPath: upper) == ["created"])
    }

    @Test func bindMountsAndReadOnlyRoot() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let shared = fixture.stateDirectory + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        try "from host\n".write(toFile: shared + "/file", atomically: true, encoding: .utf8)
        let writable = fixture.stateDirectory + "/writable"
        try FileManager.default.createDirectory(atPath: writable, withIntermediateDirectories: true)
        let result = try fixture.run("binds", ["sh", "-c", """
            cat /data/file; touch /data/new 2>/dev/null || echo data-ro
            echo out > /out/file; touch /rootfile 2>/dev/null || echo root-ro
            """]) { spec in
            spec.mounts = [
                BindMount(source: shared, destination: "/data", readOnly: true),
                BindMount(source: writable, destination: "/mnt/out/../../out"),
            ]
            spec.readOnlyRootFilesystem = true
        }
        #expect(result.output == "from host\ndata-ro\nroot-ro\n", "\(result.error)")
        #expect((try? String(contentsOfFile: writable + "/file", encoding: .utf8)) == "out\n")
        #expect(!FileManager.default.fileExists(atPath: shared + "/new"))
    }

    @Test func processLimitsApply() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("rlimit", ["sh", "-c", "ulimit -n"]) {
            $0.resourceLimits = [ProcessLimit(resource: Int32(RLIMIT_NOFILE.rawValue), soft: 256, hard: 256)]
        }
        #expect(result.output == "256\n")
    }

    /// A daemon holding more descriptors than the container's open-file limit
    /// still starts it: the child arranges its stdio before lowering the limit.
    @Test func openFileLimitBelowTheDaemonsDescriptorCount() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let held = (0..<300).map { _ in open("/dev/null", O_RDONLY | O_CLOEXEC) }
        defer { for fd in held where fd >= 0 { close(fd) } }
        #expect(held.allSatisfy { $0 >= 0 })
        #expect(held.max() ?? 0 >= 256, "the test must hold a descriptor above the limit")
        let result = try fixture.run("rlimit-busy", ["sh", "-c", "ulimit -n; ls /proc/self/fd | wc -l"]) {
            $0.resourceLimits = [ProcessLimit(resource: Int32(RLIMIT_NOFILE.rawValue), soft: 64, hard: 64)]
        }
        #expect(result.output.hasPrefix("64\n"), "\(result.output) \(result.error)")
    }
}

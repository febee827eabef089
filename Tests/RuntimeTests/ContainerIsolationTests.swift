import Foundation
import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Container isolation", .serialized, .enabled(if: TestImage.available, "needs root and busybox-static"),
       .timeLimit(.minutes(5)))
struct ContainerIsolationTests {
    @Test func commandIsPidOneAndSeesOnlyItsOwnProcesses() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("pids", ["sh", "-c", "echo $$; cut -d' ' -f1 /proc/1/stat; ls /proc | grep -E '^[0-9]+$'"])
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.prefix(2) == ["1", "1"])
        let pids = lines.dropFirst(2).compactMap { Int($0) }
        #expect(pids.contains(1))
        // sh, ls and grep only: host processes (pid 1 of the host is process_api, hundreds of others) are invisible.
        #expect(pids.count <= 4 && pids.allSatisfy { $0 < 10 }, "\(pids)")
    }

    /// A container's processes start with no signal blocked or ignored,
    /// whatever the thread that starts them blocks (a test process's
    /// children inherit SIGTERM blocked; `shoal daemon` ignores SIGTERM), as
    /// runc resets them before execve: the SIGTERM of `stop` must reach the
    /// container's trap. exec's processes likewise.
    @Test func signalsStartUnblockedAndAtTheirDefaultActions() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        var blocked = sigset_t(), previous = sigset_t()
        sigemptyset(&blocked)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGUSR1] { sigaddset(&blocked, signal) }
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try fixture.runtime.run(fixture.spec("sleeper", ["sleep", "1000"]))
        try fixture.runtime.run(fixture.spec("trapper", ["sh", "-c", "trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done"]))
        let masks = try fixture.runtime.exec("sleeper", ExecSpec(command: ["grep", "-E", "^Sig(Blk|Ign)", "/proc/1/status", "/proc/self/status"]))
        #expect(masks.output == """
            /proc/1/status:SigBlk:\t0000000000000000
            /proc/1/status:SigIgn:\t0000000000000000
            /proc/self/status:SigBlk:\t0000000000000000
            /proc/self/status:SigIgn:\t0000000000000000

            """, "\(masks.output) \(masks.errorOutput)")
        #expect(try fixture.eventually { try fixture.runtime.logs("trapper").standardOutput == "ready\n" })
        #expect(try fixture.runtime.stop("trapper", gracePeriod: .seconds(60)) == .exited(7), "SIGTERM reached the trap, not a SIGKILL after the grace period")
        _ = try fixture.runtime.stop("sleeper", gracePeriod: .zero)
    }

    @Test func hostnameAndNetworkNamespace() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("named", ["sh", "-c", "hostname; echo $HOSTNAME; ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags"]) {
            $0.hostname = "box-1"
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.prefix(3) == ["box-1", "box-1", "lo"], "only lo in a new network namespace")
        #expect(String(cString: host) != "box-1")
        // lo is up (IFF_UP is bit 0 of flags).
        #expect(lines.count == 5 && (Int(lines[4].dropFirst(2), radix: 16).map { $0 & 1 == 1 } ?? false), "\(lines)")
    }

    @Test func maskedPathsAreUnreadable() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        // The host can read /proc/timer_list; the container sees an empty file.
        let hostTimerList = try String(contentsOfFile: "/proc/timer_list", encoding: .utf8)
        #expect(!hostTimerList.isEmpty)
        let result = try fixture.run("masked", ["sh", "-c", """
            wc -c < /proc/timer_list; wc -c < /proc/keys; ls -A /sys/firmware | wc -l
            if [ -e /proc/kcore ]; then wc -c < /proc/kcore; else echo absent; fi
            grep -c ' /proc/timer_list ' /proc/self/mountinfo
            """])
        let lines = result.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines == ["0", "0", "0", FileManager.default.fileExists(atPath: "/proc/kcore") ? "0" : "absent", "1"],
                "\(result.output) \(result.error)")
    }

    @Test func kernelKnobsAreReadOnly() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("knobs", ["sh", "-c", """
            echo 1 > /proc/sys/kernel/hostname && echo proc-sys-writable
            touch /sys/kernel/x 2>/dev/null && echo sys-writable
            awk '$5 ~ /^\\/proc\\/(sys|irq|bus|fs)$/ && $6 ~ /^ro/' /proc/self/mountinfo | wc -l
            awk '$5 == "/sys" && $6 ~ /^ro/' /proc/self/mountinfo | wc -l
            """])
        #expect(result.output == "4\n1\n", "\(result.output) \(result.error)")
        #expect(result.error.contains("Read-only file system"))
    }

    @Test func devIsATmpfsWithTheStandardNodesPtsShmAndMqueue() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("dev", ["sh", "-c", """
            for node in null zero full random urandom tty; do [ -c /dev/$node ] && echo "$node $(stat -c '%t:%T %a' /dev/$node)"; done
            for point in /dev /dev/pts /dev/shm /dev/mqueue; do awk -v p=$point '$5 == p { print p, $(NF-2) }' /proc/self/mountinfo; done
            readlink /dev/ptmx; readlink /dev/fd
            echo shared > /dev/shm/segment && cat /dev/shm/segment
            head -c 5 /dev/zero | wc -c; echo gone > /dev/null && echo null-ok
            echo x > /dev/full || echo full-refused
            ls /dev | wc -l
            """])
        let lines = result.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines == [
            "null 1:3 666", "zero 1:5 666", "full 1:7 666", "random 1:8 666", "urandom 1:9 666", "tty 5:0 666",
            "/dev tmpfs", "/dev/pts devpts", "/dev/shm tmpfs", "/dev/mqueue mqueue",
            "pts/ptmx", "/proc/self/fd", "shared", "5", "null-ok", "full-refused",
            // the six nodes, fd, stdin, stdout, stderr, core, ptmx, pts, shm, mqueue: no host device
            "15",
        ], "\(result.output) \(result.error)")
    }

    @Test func hostFilesOutsideTheRootAreUnreachableAndTheMountTableIsItsOwn() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let secret = fixture.stateDirectory + "/host-secret"
        try "host only".write(toFile: secret, atomically: true, encoding: .utf8)
        let result = try fixture.run("escape", ["sh", "-c", """
            cat \(secret) 2>/dev/null || echo unreachable
            cat /proc/1/root\(secret) 2>/dev/null || echo unreachable-through-proc
            cd /..; pwd; ls /.. | grep -c host-secret
            awk '{ print $5 }' /proc/self/mountinfo
            """])
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.prefix(4) == ["unreachable", "unreachable-through-proc", "/", "0"], "\(result.output) \(result.error)")
        // Only the container's own mounts: its root, /proc, /dev, /sys and
        // the runtime's files and masks under them, none of the host's.
        let points = lines.dropFirst(4)
        let allowed = ["/proc", "/dev", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
        let foreign = points.filter { point in point != "/" && !allowed.contains { point == $0 || point.hasPrefix($0 + "/") } }
        #expect(!points.isEmpty && foreign.isEmpty, "host mount points visible: \(foreign)")
    }

    @Test func capabilitiesAreDockersDefaultAndNoNewPrivsIsSet() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("caps", ["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"])
        let fields = Dictionary(uniqueKeysWithValues: result.output.split(separator: "\n").map { line in
            let parts = line.split(separator: ":", maxSplits: 1)
            return (String(parts[0]), parts[1].trimmingCharacters(in: .whitespaces))
        })
        let docker = String(format: "%016llx", Capabilities.dockerDefault)
        #expect(docker == "00000000a80425fb")
        #expect(fields["CapBnd"] == docker)
        #expect(fields["CapEff"] == docker)
        #expect(fields["CapPrm"] == docker)
        #expect(fields["CapInh"] == "0000000000000000")
        #expect(fields["CapAmb"] == "0000000000000000")
        #expect(fields["NoNewPrivs"] == "1")
        // No CAP_SYS_ADMIN: mounting fails even as root.
        let mount = try fixture.run("mount", ["sh", "-c", "mount -t tmpfs none /tmp && echo mounted"])
        #expect(mount.output == "")
        #expect(mount.error.lowercased().contains("permission denied") || mount.error.contains("Operation not permitted"), "\(mount.error)")
    }

    @Test func hostDevicesStayClosedDespiteMknod() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        var info = stat()
        guard stat("/dev/vda", &info) == 0 else { return }
        let major = (info.st_rdev >> 8) & 0xfff, minor = info.st_rdev & 0xff
        // CAP_MKNOD may create the node; the devices cgroup refuses to open it.
        let result = try fixture.run("disk", ["sh", "-c", "mknod /tmp/disk b \(major) \(minor) && echo created; head -c 1 /tmp/disk > /dev/null && echo opened"])
        #expect(result.output == "created\n")
        #expect(result.error.contains("Operation not permitted"), "\(result.error)")
    }

    @Test func noHostDescriptorsLeak() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        // Open a few descriptors in the runtime process that must not leak.
        let leak = open("/etc/hostname", O_RDONLY)  // not O_CLOEXEC on purpose
        defer { close(leak) }
        let result = try fixture.run("fds", ["ls", "/proc/self/fd"])
        let fds = Set(result.output.split(whereSeparator: \.isWhitespace).compactMap { Int($0) })
        #expect(fds.isSubset(of: [0, 1, 2, 3]), "\(fds)")  // 3 is ls's own directory
        let cwd = try fixture.run("cwd", ["readlink", "/proc/self/cwd"])
        #expect(cwd.output == "/\n")
    }

    @Test func userNamespaceMapsRootToAnUnprivilegedRange() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let mapping = UserNamespaceMapping(hostUID: 100_000, hostGID: 100_000, size: 65_536)
        if let unavailable = ContainerRuntime.userNamespaceUnavailability() {
            // The kernel refuses user namespaces to this process (a chroot, as
            // in CI's fresh root, or disabled): starting such a container must
            // fail with the typed error that says so, leaving nothing behind.
            guard case .userNamespacesUnavailable = unavailable else {
                Issue.record("probing user namespaces failed unexpectedly: \(unavailable)")
                return
            }
            let error = #expect(throws: RuntimeError.self) {
                try fixture.runtime.run(fixture.spec("userns", ["true"]) { $0.userNamespace = mapping })
            }
            guard case .userNamespacesUnavailable(let cause)? = error else {
                Issue.record("expected userNamespacesUnavailable, got \(String(describing: error))")
                return
            }
            #expect(cause.errno == EPERM || cause.errno == EACCES || cause.errno == EUSERS || cause.errno == ENOSPC)
            let message = "\(error!)"
            #expect(message.contains("user namespaces are unavailable here"), "\(message)")
            #expect(message.contains("run without --userns-remap"), "\(message)")
            let state = try #require(fixture.runtime.container("userns")?.state)
            #expect(state.status == .exited)
            #expect(state.exitStatus == .exited(125))
            #expect(state.startError == message)
            for directory in fixture.cgroupDirectories("userns") {
                #expect(!FileManager.default.fileExists(atPath: directory))
            }
            // Containers without a user namespace still start here.
            let plain = try fixture.run("plain", ["sh", "-c", "id -u"])
            #expect(plain.status == .exited(0))
            #expect(plain.output == "0\n")
            return
        }
        let result = try fixture.run("userns", ["sh", "-c", "id -u; cat /proc/self/uid_map; stat -c %u /proc/1; echo x > /dev/null && echo null-ok"]) {
            $0.userNamespace = mapping
        }
        #expect(result.status == .exited(0), "\(result.error)")
        let lines = result.output.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines == ["0", "0 100000 65536", "0", "null-ok"])
        // Seen from the host, the container's root is uid 100000.
        let container = try fixture.runtime.run(fixture.spec("userns-host", ["sleep", "1000"]) {
            $0.userNamespace = mapping
        })
        let pid = try #require(container.state.pid)
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        #expect(status.split(separator: "\n").contains { $0.hasPrefix("Uid:") && $0.contains("100000") })
        try fixture.runtime.stop("userns-host", gracePeriod: .zero)
    }
}

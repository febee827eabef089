import Foundation
import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The attacks of issue #5's security list, tried from inside real containers.
@Suite("Container security", .serialized, .enabled(if: TestImage.available, "needs root and busybox-static"),
       .timeLimit(.minutes(5)))
struct ContainerSecurityTests {
    @Test func kernelModulesCannotBeLoaded() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        // init_module checks CAP_SYS_MODULE before it looks at the image
        // (EPERM); a kernel built without modules answers ENOSYS.
        let result = try fixture.run("modules", ["sh", "-c", """
            head -c 4096 /dev/zero > /tmp/evil-$$.ko
            insmod /tmp/evil-$$.ko && echo loaded
            rm -f /tmp/evil-$$.ko
            if [ -e /proc/sys/kernel/modprobe ]; then echo /tmp/x > /proc/sys/kernel/modprobe && echo modprobe-path-changed; fi
            grep CapBnd /proc/self/status
            """])
        #expect(!result.output.contains("loaded"), "\(result.output)")
        #expect(!result.output.contains("modprobe-path-changed"), "\(result.output)")
        #expect(result.error.contains("Operation not permitted") || result.error.contains("not support"), "\(result.error)")
        let bounding = try #require(result.output.split(separator: "\n").last?.split(separator: "\t").last)
        let capabilities = try #require(UInt64(bounding, radix: 16))
        let capSysModule: UInt64 = 1 << 16
        #expect(capabilities & capSysModule == 0, "CAP_SYS_MODULE is not in the bounding set")
        // The host's module helper path is unchanged.
        if let helper = try? String(contentsOfFile: "/proc/sys/kernel/modprobe", encoding: .utf8) {
            #expect(helper != "/tmp/x\n")
        }
    }

    /// runc CVE-2024-21626: a descriptor of the runtime (a host directory)
    /// leaked into the container let `cwd=/proc/self/fd/N` escape. Neither
    /// the init nor an exec'd process may hold anything of the host's.
    @Test func noHostDescriptorReachesInitOrExec() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        // Descriptors of the runtime's process without O_CLOEXEC, on purpose.
        let directory = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY)
        let file = open("/etc/hostname", O_RDONLY)
        defer { close(directory); close(file) }
        try fixture.runtime.run(fixture.spec("fds", ["sleep", "1000"]))
        let view = try fixture.runtime.exec("fds", ExecSpec(command: ["sh", "-c", """
            echo init $(ls /proc/1/fd | sort -n | tr '\\n' ' ')
            for fd in /proc/1/fd/*; do echo "init-target $(readlink $fd)"; done
            for fd in /proc/$$/fd/*; do echo "exec-target $(readlink $fd)"; done
            echo cwd $(readlink /proc/$$/cwd) $(readlink /proc/1/cwd)
            for n in 3 4 5 6 7 8 9 10 11 12; do cd /proc/self/fd/$n 2>/dev/null && echo "entered $n $(pwd -P)"; done
            echo done
            """]))
        #expect(view.status == .exited(0), "\(view.errorOutput)")
        let lines = view.output.split(separator: "\n").map(String.init)
        #expect(lines.first == "init 0 1 2", "\(view.output)")
        // Everything the init and the exec'd shell hold is a pipe (the log
        // FIFOs are the init's stdout/stderr), /dev/null or a /proc
        // directory it opened itself: nothing to traverse.
        for line in lines where line.hasPrefix("init-target") || line.hasPrefix("exec-target") {
            let target = line.split(separator: " ", maxSplits: 1).last.map(String.init) ?? ""
            let fifo = target.hasSuffix("/stdout.fifo") || target.hasSuffix("/stderr.fifo")
            #expect(target.hasPrefix("pipe:") || fifo || target == "/dev/null" || target.hasPrefix("/proc/"), "\(line)")
        }
        #expect(lines.contains("cwd / /"), "\(view.output)")
        #expect(!lines.contains { $0.hasPrefix("entered") }, "a descriptor leads to a directory: \(view.output)")
        #expect(lines.last == "done")
    }

    /// runc CVE-2019-5736: a container process opened the runtime's binary
    /// through /proc/PID/exe of a runtime process that had joined the
    /// container, then overwrote it. Here the exec helper and its child are
    /// not dumpable until execve, the monitor stays outside the container's
    /// pid namespace, and no process the container can see runs a host binary.
    @Test func theContainerCannotReachTheRuntimesBinary() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        var hostBinaries: [String: String] = [:]  // "device:inode" -> path
        var before: [String: (Int, Int)] = [:]
        let runtimeBinary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        for path in [runtimeBinary, fixture.runtime.configuration.monitorExecutable].compactMap({ $0 }) {
            var info = stat()
            guard stat(path, &info) == 0 else { continue }
            hostBinaries["\(info.st_dev):\(info.st_ino)"] = path
            before[path] = (Int(info.st_size), Int(info.st_mtim.tv_sec))
        }
        #expect(hostBinaries.count == 2, "the test binary and shoal-monitor")
        // The container scans every process it can see, opening each exe for
        // writing and recording its identity, while the runtime execs into it.
        try fixture.runtime.run(fixture.spec("scanner", ["sh", "-c", """
            while true; do
              for exe in /proc/[0-9]*/exe; do
                id=$(stat -L -c '%d:%i' $exe 2>/dev/null) && echo "seen $id"
                ( printf '' >> $exe ) 2>/dev/null && echo "opened-for-write $id"
              done
            done
            """]))
        for _ in 0..<40 {
            let result = try fixture.runtime.exec("scanner", ExecSpec(command: ["true"]))
            #expect(result.status == .exited(0))
        }
        try fixture.runtime.stop("scanner", gracePeriod: .zero)
        let output = try fixture.runtime.logs("scanner").standardOutput
        let seen = Set(output.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) })
        #expect(!seen.isEmpty, "the scanner ran")
        // stat prints the device in decimal, as st_dev.
        for identity in seen {
            #expect(hostBinaries[identity] == nil, "the container reached \(hostBinaries[identity] ?? "")")
        }
        #expect(!output.contains("opened-for-write"), "a running binary was opened for writing")
        for (path, (size, modified)) in before {
            var info = stat()
            #expect(stat(path, &info) == 0 && Int(info.st_size) == size && Int(info.st_mtim.tv_sec) == modified, "\(path) changed")
        }
    }

    /// A CPU quota of a quarter CPU holds against a busy loop: over a
    /// wall-clock stretch the cgroup's CPU time stays near a quarter of it
    /// (bounded generously: a loaded machine only makes it smaller).
    @Test func cpuQuotaHolds() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.run(fixture.spec("spinner", ["sh", "-c", "while :; do :; done & while :; do :; done"]) {
            $0.limits.cpuQuotaMicroseconds = ResourceLimits.cpus(0.25)
        })
        usleep(300_000)
        let first = try #require(try fixture.runtime.statistics("spinner").cpuUsageMicroseconds)
        let started = ContinuousClock.now
        usleep(2_000_000)
        let second = try #require(try fixture.runtime.statistics("spinner").cpuUsageMicroseconds)
        let wall = ContinuousClock.now - started
        let wallMicroseconds = Double(wall.components.seconds) * 1e6 + Double(wall.components.attoseconds) / 1e12
        let share = Double(second - first) / wallMicroseconds
        // Two busy loops would use up to 2 CPUs unthrottled; the quota caps
        // them at 0.25 (+ one period of slack at each end of the window).
        #expect(share > 0 && share <= 0.25 + 2 * 0.1 / (wallMicroseconds / 1e6), "CPU share \(share)")
        // When it got its whole quota (a quiet machine), the kernel throttled it to hold it there.
        if share > 0.2, let cpu = fixture.cgroupDirectories("spinner").first(where: { $0.contains("/cpu/") || $0.contains("/cpu,") }),
           let stat = try? String(contentsOfFile: cpu + "/cpu.stat", encoding: .utf8) {
            #expect(stat.contains("nr_throttled") && !stat.contains("nr_throttled 0\n"), "\(stat)")
        }
        try fixture.runtime.stop("spinner", gracePeriod: .zero)
    }
}

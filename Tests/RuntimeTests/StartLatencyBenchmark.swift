import Foundation
import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Start-to-exit latency of `/bin/true`, Shoal against crun and runc on the
/// same busybox rootfs in the same run. Not a unit test: runs only with
/// SHOAL_RUNTIME_BENCHMARK=1, meant for a release build:
///
///     swift build -c release --scratch-path .build-runtime --build-tests
///     SHOAL_RUNTIME_BENCHMARK=1 swift test -c release --scratch-path .build-runtime \
///         --skip-build --filter StartLatencyBenchmark
@Suite("Start latency benchmark", .serialized,
       .enabled(if: ProcessInfo.processInfo.environment["SHOAL_RUNTIME_BENCHMARK"] == "1" && TestImage.available))
struct StartLatencyBenchmark {
    static let runs = Int(ProcessInfo.processInfo.environment["SHOAL_RUNTIME_BENCHMARK_RUNS"] ?? "") ?? 50

    @Test func trueStartToExit() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let shoal = try measure { index in
            let id = "bench-\(index)"
            let container = try fixture.runtime.run(fixture.spec(id, ["/bin/true"]))
            guard container.wait(timeout: .seconds(30)) == .exited(0) else { throw BenchmarkError.failed("shoal run \(index)") }
            try fixture.runtime.delete(id)
        }
        var lines = ["shoal  median \(format(shoal))"]

        let bundle = fixture.stateDirectory + "/bundle"
        try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
        try writeOCIConfig(bundle: bundle, rootfs: fixture.rootfs)
        let unshare = try measure { _ in
            try run("/usr/bin/unshare", ["--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "/bin/true"])
        }
        lines.append("unshare --fork --pid --mount --uts --ipc --net true  median \(format(unshare))  (kernel floor)")
        for (name, path) in [("crun", "/usr/bin/crun"), ("runc", "/usr/sbin/runc")] where FileManager.default.isExecutableFile(atPath: path) {
            let root = fixture.stateDirectory + "/\(name)-state"
            let median = try measure { index in
                let id = "shoal-bench-\(name)-\(getpid())-\(index)"
                if name == "crun" {
                    // crun 1.8 refuses hybrid hosts: hide the cgroup2 mount (NOTES).
                    try run("/usr/bin/unshare", ["--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                        "umount /sys/fs/cgroup/unified 2>/dev/null; exec \(path) --root \(root) run --bundle \(bundle) \(id)"])
                } else {
                    try run(path, ["--root", root, "run", "--bundle", bundle, id])
                }
            }
            lines.append("\(name)  median \(format(median))  shoal/\(name) ratio \(String(format: "%.2f", shoal / median))")
        }
        print("start-to-exit of /bin/true over \(Self.runs) runs:\n  " + lines.joined(separator: "\n  "))
    }

    enum BenchmarkError: Error { case failed(String) }

    func measure(_ body: (Int) throws -> Void) throws -> Double {
        try body(-1)  // warm-up
        var samples: [Double] = []
        for index in 0..<Self.runs {
            let start = ContinuousClock.now
            try body(index)
            let elapsed = ContinuousClock.now - start
            samples.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15)
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    func format(_ milliseconds: Double) -> String { String(format: "%.2f ms", milliseconds) }

    func run(_ path: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchmarkError.failed("\(path) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        }
    }

    /// `runc spec`'s defaults, cut to what Shoal also does: same namespaces,
    /// masked and read-only paths, Docker's capabilities, no terminal.
    func writeOCIConfig(bundle: String, rootfs: String) throws {
        let capabilities = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
                            "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
                            "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"]
        let config: [String: Any] = [
            "ociVersion": "1.0.2",
            "process": [
                "terminal": false, "user": ["uid": 0, "gid": 0], "args": ["/bin/true"],
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "cwd": "/",
                "capabilities": ["bounding": capabilities, "effective": capabilities, "permitted": capabilities],
                "noNewPrivileges": true,
            ],
            "root": ["path": rootfs, "readonly": false],
            "hostname": "bench",
            "mounts": [
                ["destination": "/proc", "type": "proc", "source": "proc"],
                ["destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]],
                ["destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]],
                ["destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]],
                ["destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]],
                ["destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]],
            ],
            "linux": [
                "resources": ["devices": [["allow": false, "access": "rwm"]]],
                "namespaces": [["type": "pid"], ["type": "network"], ["type": "ipc"], ["type": "uts"], ["type": "mount"]],
                "maskedPaths": ContainerSpec.defaultMaskedPaths,
                "readonlyPaths": ContainerSpec.defaultReadOnlyPaths,
            ],
        ]
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: bundle + "/config.json"))
    }
}

import Foundation
import Runtime
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A busybox root filesystem built once per test process: /bin/busybox
/// (busybox-static) with its applets as symlinks (`busybox --install -s`
/// run chrooted, so the links point at /bin/busybox inside the image), and
/// /etc/passwd and /etc/group with root, nobody and app.
enum TestImage {
    static let busybox = "/usr/bin/busybox"

    /// Root filesystem directory, or nil when busybox-static is missing.
    static let rootfs: String? = build()

    static var available: Bool { getuid() == 0 && rootfs != nil }

    private static func build() -> String? {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: busybox) else { return nil }
        let root = NSTemporaryDirectory() + "shoal-runtime-image-\(getpid())"
        let fileManager = FileManager.default
        try? fileManager.removeItem(atPath: root)
        do {
            for directory in ["bin", "etc", "tmp", "root", "home/app", "proc", "sys", "dev"] {
                try fileManager.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
            }
            chmod(root + "/tmp", 0o1777)
            try fileManager.copyItem(atPath: busybox, toPath: root + "/bin/busybox")
            let install = Process()
            install.executableURL = URL(fileURLWithPath: "/usr/sbin/chroot")
            install.arguments = [root, "/bin/busybox", "--install", "-s", "/bin"]
            try install.run()
            install.waitUntilExit()
            guard install.terminationStatus == 0 else { return nil }
            try """
            root:x:0:0:root:/root:/bin/sh
            app:x:1000:1000:app:/home/app:/bin/sh
            nobody:x:65534:65534:nobody:/nonexistent:/bin/false

            """.write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
            try """
            root:x:0:
            staff:x:50:app
            app:x:1000:
            nogroup:x:65534:

            """.write(toFile: root + "/etc/group", atomically: true, encoding: .utf8)
            chown(root + "/home/app", 1000, 1000)
            ExitCleanup.removeTree(atExit: NSTemporaryDirectory() + "shoal-runtime-image-\(getpid())")
            return root
        } catch {
            return nil
        }
    }
}

/// One runtime with its own state directory and cgroup parent, removed
/// with everything in it (containers, cgroups, files) by `close()`.
final class RuntimeFixture {
    let stateDirectory: String
    let cgroupParent: String
    let bridge: BridgeConfiguration
    let vethRemovalTimeout: Duration
    /// How long ``close()`` waits for removals still retrying a busy cgroup.
    static let removalTimeout: Duration = .seconds(15)
    /// Changes to the runtime's configuration (removal timeouts, the log).
    let configure: (inout ContainerRuntime.Configuration) -> Void
    var runtime: ContainerRuntime

    /// A test bridge of this test process: never the default shoal0 a
    /// `shoal dev` on this machine may be using, nor another test process's.
    static let testBridge = BridgeConfiguration(
        name: "shoaltest\(getpid() % 100_000)", subnet: IPv4Subnet("10.89.\(getpid() % 250).0/24")!)

    init(bridge: BridgeConfiguration = RuntimeFixture.testBridge, vethRemovalTimeout: Duration = .seconds(2),
         configure: @escaping (inout ContainerRuntime.Configuration) -> Void = { _ in }) throws {
        let token = UUID().uuidString.prefix(8).lowercased()
        stateDirectory = NSTemporaryDirectory() + "shoal-runtime-test-\(token)"
        cgroupParent = "shoal-test-\(token)"
        self.bridge = bridge
        self.vethRemovalTimeout = vethRemovalTimeout
        self.configure = configure
        runtime = try ContainerRuntime(configuration: Self.configuration(stateDirectory, cgroupParent, bridge, vethRemovalTimeout, configure))
    }

    func reopen() throws {
        runtime.detach()
        runtime = try ContainerRuntime(configuration: Self.configuration(stateDirectory, cgroupParent, bridge, vethRemovalTimeout, configure))
    }

    private static func configuration(_ stateDirectory: String, _ cgroupParent: String, _ bridge: BridgeConfiguration, _ vethRemovalTimeout: Duration,
                                      _ configure: (inout ContainerRuntime.Configuration) -> Void) -> ContainerRuntime.Configuration {
        var configuration = ContainerRuntime.Configuration(
            stateDirectory: stateDirectory, cgroupParent: cgroupParent, bridge: bridge, vethRemovalTimeout: vethRemovalTimeout)
        configure(&configuration)
        return configuration
    }

    var rootfs: String { TestImage.rootfs! }

    func spec(_ id: String, _ command: [String], configure: (inout ContainerSpec) -> Void = { _ in }) -> ContainerSpec {
        var spec = ContainerSpec(id: id, rootFilesystem: .directory(rootfs), command: command)
        configure(&spec)
        return spec
    }

    /// Runs to completion (bounded) and returns status and output.
    func run(_ id: String, _ command: [String], configure: (inout ContainerSpec) -> Void = { _ in })
        throws -> (status: ExitStatus?, output: String, error: String, state: ContainerState)
    {
        let container = try runtime.run(spec(id, command, configure: configure))
        let status = container.wait(timeout: .seconds(60))
        let logs = try runtime.logs(id)
        return (status, logs.standardOutput, logs.standardError, container.state)
    }

    /// Polls `condition` up to `timeout`.
    func eventually(timeout: Duration = .seconds(20), _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }

    /// The cgroup directories a container of this fixture would use.
    func cgroupDirectories(_ id: String) -> [String] {
        runtime.cgroupLayout.makeCgroup(parent: cgroupParent, name: id).directories
    }

    func close() {
        for state in runtime.list() {
            try? runtime.delete(state.id, force: true)
        }
        // A cgroup still busy is tried again later: wait for it (bounded) rather than leave it behind.
        _ = runtime.awaitRemovals(timeout: Self.removalTimeout)
        runtime.detach()
        for directory in runtime.cgroupLayout.makeCgroup(parent: cgroupParent, name: "x").directories {
            rmdir((directory as NSString).deletingLastPathComponent)
        }
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }

    deinit { close() }
}

/// Mount points of this process's mount namespace.
func hostMountPoints() -> [String] {
    // Read to its end: String(contentsOfFile:) stops at one page of a /proc file.
    let data = FileHandle(forReadingAtPath: "/proc/self/mountinfo")?.readDataToEndOfFile() ?? Data()
    let text = String(decoding: data, as: UTF8.self)
    return text.split(separator: "\n").compactMap { line in
        let fields = line.split(separator: " ")
        return fields.count > 4 ? String(fields[4]) : nil
    }
}

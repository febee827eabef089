import Foundation
import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A deleted container's cgroup that the kernel will not let go yet (on a
/// loaded machine, processes still exiting past the removal timeout) is
/// tried again later on the cleanup thread, not left behind. The test holds
/// the cgroup busy itself, deterministically: a child cgroup it makes inside
/// the container's (rmdir of a cgroup with children is EBUSY, as with
/// processes in it) and removes when the test says so.
@Suite("Deleted containers' busy cgroups are retried", .serialized, .enabled(if: TestImage.available, "needs root and busybox-static"),
       .timeLimit(.minutes(3)))
struct CgroupRemovalRetryTests {
    /// A runtime that gives up on a busy cgroup within 50 ms per try.
    static func fixture(retries: Int, delay: Duration, log: LogLines = LogLines()) throws -> RuntimeFixture {
        try RuntimeFixture { configuration in
            configuration.cgroupRemovalTimeout = .milliseconds(50)
            configuration.cgroupRemovalRetries = retries
            configuration.cgroupRemovalRetryDelay = delay
            configuration.log = { log.append($0) }
        }
    }

    /// Runs a container and makes a child cgroup in its first cgroup directory: the cgroup cannot be removed until it goes.
    static func runHeldBusy(_ fixture: RuntimeFixture, _ id: String) throws -> (directories: [String], child: String) {
        try fixture.runtime.run(fixture.spec(id, ["sleep", "1000"]))
        let directories = fixture.cgroupDirectories(id)
        let child = try #require(directories.first) + "/held-by-test"
        #expect(mkdir(child, 0o755) == 0, "mkdir \(child): errno \(errno)")
        return (directories, child)
    }

    static func removals(_ fixture: RuntimeFixture) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: fixture.stateDirectory + "/removing")) ?? []
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    @Test("a cgroup still busy when delete returns is removed once it is free, and the container's files with it")
    func aBusyCgroupIsRemovedOnceFree() throws {
        let log = LogLines()
        let fixture = try Self.fixture(retries: 1000, delay: .milliseconds(20), log: log)
        defer { fixture.close() }
        let (directories, child) = try Self.runHeldBusy(fixture, "held")
        defer { rmdir(child) }
        try fixture.runtime.delete("held", force: true)
        fixture.runtime.awaitCleanup()
        #expect(fixture.runtime.container("held") == nil, "the container is gone from view at once")
        // Still busy: kept, and tried again (not given up) for as long as the test holds it.
        #expect(!fixture.runtime.awaitRemovals(timeout: .milliseconds(300)), "not finished while the cgroup is busy")
        #expect(Self.exists(directories[0]), "the held cgroup is still there")
        #expect(Self.removals(fixture).count == 1, "its files wait for the cgroup: \(Self.removals(fixture))")
        #expect(rmdir(child) == 0)
        #expect(fixture.runtime.awaitRemovals(timeout: .seconds(20)), "finished once free: files \(Self.removals(fixture))")
        #expect(!directories.contains(where: Self.exists), "cgroup \(directories.filter(Self.exists)) removed once free")
        #expect(log.lines.isEmpty, "\(log.lines)")
    }

    @Test("a runtime restarted before the cgroup is free finishes its removal")
    func aRestartedRuntimeFinishesIt() throws {
        // The first runtime would wait an hour before trying again: only the restarted one can remove it.
        let fixture = try Self.fixture(retries: 10, delay: .seconds(3600))
        defer { fixture.close() }
        let (directories, child) = try Self.runHeldBusy(fixture, "held")
        defer { rmdir(child) }
        try fixture.runtime.delete("held", force: true)
        fixture.runtime.awaitCleanup()
        fixture.runtime.detach()
        #expect(Self.exists(directories[0]) && Self.removals(fixture).count == 1)
        #expect(rmdir(child) == 0)
        try fixture.reopen()
        #expect(fixture.eventually { !directories.contains(where: Self.exists) && Self.removals(fixture).isEmpty },
                "cgroup \(directories.filter(Self.exists)) and files \(Self.removals(fixture)) removed by the restarted runtime")
        #expect(fixture.runtime.container("held") == nil)
    }

    @Test("after its tries the runtime gives up, says which cgroup it left in its log, and removes the files")
    func givesUpAndSaysSo() throws {
        let log = LogLines()
        let fixture = try Self.fixture(retries: 3, delay: .milliseconds(10), log: log)
        defer { fixture.close() }
        let (directories, child) = try Self.runHeldBusy(fixture, "held")
        defer {
            rmdir(child)
            for directory in directories { rmdir(directory) }
        }
        try fixture.runtime.delete("held", force: true)
        #expect(fixture.eventually { Self.removals(fixture).isEmpty && !log.lines.isEmpty }, "given up: \(log.lines)")
        #expect(Self.exists(directories[0]), "the held cgroup stays: nothing can remove it")
        let line = log.lines.first ?? ""
        #expect(log.lines.count == 1, "\(log.lines)")
        #expect(line.contains("gave up removing the cgroup of deleted container held after 3 tries") && line.contains(directories[0]), "\(line)")
    }
}

/// What a runtime logged, in order.
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []

    func append(_ line: String) { lock.withLock { stored.append(line) } }

    var lines: [String] { lock.withLock { stored } }
}

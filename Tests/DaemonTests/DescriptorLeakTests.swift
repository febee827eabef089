import Daemon
import Foundation
import Testing
import TestSupport

/// A stopped daemon closes everything it opened: its stores, its sockets,
/// its event loops and log files. Counted on /proc/self/fd, so the suite
/// must not share the process with tests that open descriptors meanwhile
/// (CI runs every suite one after the other).
@Suite("Daemons leave no open descriptors behind", .serialized, .timeLimit(.minutes(3)))
struct DescriptorLeakTests {
    @Test("a daemon started and stopped (no cluster) closes what it opened")
    func standaloneDaemon() async throws {
        try await TestCluster.with { cluster in
            // Warm-up: what stays open for the life of the process (the first
            // use of a system library, a thread pool) is not a leak.
            try await cluster.start("warm-up")
            _ = try await cluster.client("warm-up").call(.get, "/v1/status") as DaemonStatus
            await cluster.stop("warm-up")
            let before = OpenDescriptors()
            try await cluster.start("solo")
            _ = try await cluster.client("solo").call(.get, "/v1/status") as DaemonStatus
            await cluster.stop("solo")
            let leaked = await OpenDescriptors.settle(to: before)
            #expect(leaked.isEmpty, "still open after stop: \(leaked)")
        }
    }

    @Test("a manager cluster of three and a worker, started and stopped, closes what it opened")
    func managerCluster() async throws {
        try await TestCluster.with { cluster in
            _ = try await cluster.initCluster("warm-up")
            await cluster.stop("warm-up")
            let before = OpenDescriptors()
            _ = try await cluster.startManagers(workers: ["w1"])
            _ = try await cluster.waitForLeader()
            await cluster.stopAll()
            let leaked = await OpenDescriptors.settle(to: before)
            #expect(leaked.isEmpty, "still open after stop: \(leaked)")
        }
    }
}

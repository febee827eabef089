@testable import Daemon
import Foundation
import HTTP
import Testing

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// In-process daemons with temporary data directories and sockets, on loopback.
final class TestCluster: @unchecked Sendable {
    let root: String
    var snapshotEveryEntries: UInt64 = 10_000
    /// Lifetime of the node certificates the managers issue; nil: the default.
    var nodeCertificateLifetime: Duration?
    private(set) var daemons: [String: Daemon] = [:]
    private var clients: [String: ControlClient] = [:]
    private let lock = NSLock()

    init() throws {
        root = NSTemporaryDirectory() + "shoal-daemon-tests-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func settings(_ name: String) -> DaemonSettings {
        var settings = DaemonSettings(dataDirectory: "\(root)/\(name)", socketPath: "\(root)/\(name).sock")
        settings.tickInterval = .milliseconds(50)
        settings.electionTimeoutTicks = 10
        settings.snapshotEveryEntries = snapshotEveryEntries
        settings.proposalTimeout = .seconds(4)
        settings.readTimeout = .seconds(3)
        settings.hostname = name
        if let nodeCertificateLifetime { settings.nodeCertificateLifetime = nodeCertificateLifetime }
        return settings
    }

    @discardableResult
    func start(_ name: String) async throws -> Daemon {
        let daemon = Daemon(settings: settings(name))
        try await daemon.start()
        lock.withLock { daemons[name] = daemon }
        return daemon
    }

    func stop(_ name: String) async {
        let daemon: Daemon? = lock.withLock { daemons.removeValue(forKey: name) }
        await daemon?.stop()
        let client: ControlClient? = lock.withLock { clients.removeValue(forKey: name) }
        await client?.shutdown()
    }

    func stopAll() async {
        for name in lock.withLock({ Array(daemons.keys) }).sorted() { await stop(name) }
    }

    func daemon(_ name: String) -> Daemon { lock.withLock { daemons[name]! } }

    func client(_ name: String) throws -> ControlClient {
        if let existing = lock.withLock({ clients[name] }) { return existing }
        let client = try ControlClient(host: "unix://\(root)/\(name).sock", timeout: .seconds(20))
        lock.withLock { clients[name] = client }
        return client
    }

    func removeFiles() {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Runs `body` with a fresh cluster and stops every daemon afterwards, failed or not.
    static func with(snapshotEveryEntries: UInt64 = 10_000, _ body: (TestCluster) async throws -> Void) async throws {
        let cluster = try TestCluster()
        cluster.snapshotEveryEntries = snapshotEveryEntries
        do {
            try await body(cluster)
        } catch {
            await cluster.stopAll()
            cluster.removeFiles()
            throw error
        }
        await cluster.stopAll()
        cluster.removeFiles()
    }

    // MARK: Steps

    func initCluster(_ name: String) async throws -> InitReply {
        try await start(name)
        return try await client(name).call(.post, "/v1/init", json: InitRequest(listenAddress: "127.0.0.1:0", apiListenAddress: "127.0.0.1:0"))
    }

    func join(_ name: String, token: String, address: String) async throws -> JoinReply {
        if lock.withLock({ daemons[name] }) == nil { try await start(name) }
        return try await client(name).call(.post, "/v1/join", json: JoinRequest(token: token, address: address, listenAddress: "127.0.0.1:0", apiListenAddress: "127.0.0.1:0"))
    }

    /// A 3-manager cluster (m1 init, m2 and m3 join) and optionally workers.
    func startManagers(_ names: [String] = ["m1", "m2", "m3"], workers: [String] = []) async throws -> InitReply {
        let initialized = try await initCluster(names[0])
        for name in names.dropFirst() {
            let reply = try await join(name, token: initialized.managerToken, address: initialized.advertiseAddress)
            #expect(reply.role == "manager")
        }
        for name in workers {
            let reply = try await join(name, token: initialized.workerToken, address: initialized.advertiseAddress)
            #expect(reply.role == "worker")
        }
        return initialized
    }

    func leaderName(among names: [String]? = nil) -> String? {
        let candidates = names ?? lock.withLock { Array(daemons.keys) }
        return candidates.sorted().first { name in lock.withLock { daemons[name] }?.raftStatus?.role.rawValue == "leader" }
    }

    func waitForLeader(among names: [String]? = nil, timeout: Duration = .seconds(20)) async throws -> String {
        try await eventually("a leader among \(names ?? [])", timeout: timeout) { self.leaderName(among: names) }
    }

    /// Every running member's Raft view, for failure messages.
    func raftDiagnostics() -> String {
        let running = lock.withLock { daemons }
        return running.keys.sorted().map { name in
            guard let status = running[name]?.raftStatus else { return "\(name): not a manager" }
            return "\(name): \(status.role.rawValue) term \(status.term) leader \(status.leader) commit \(status.commitIndex) applied \(status.appliedIndex) snapshot \(status.snapshotIndex)"
                + " peers [\(running[name]?.manager?.transport.diagnostics ?? "")]"
        }.joined(separator: "; ")
    }

    /// `eventually`, with every member's Raft view in the failure message.
    func eventuallyInRaft<T>(_ what: String, timeout: Duration = .seconds(30), _ condition: () async throws -> T?) async throws -> T {
        do {
            return try await eventually(what, timeout: timeout, condition)
        } catch {
            throw TestFailure("\(error); raft: \(raftDiagnostics())")
        }
    }

    func nodes(via name: String, stale: Bool = false) async throws -> [NodeView] {
        try await client(name).call(.get, "/v1/nodes" + (stale ? "?stale=true" : ""))
    }
}

/// Polls `condition` until it returns a value or `timeout` passes.
func eventually<T>(_ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while ContinuousClock.now < deadline {
        do {
            if let value = try await condition() { return value }
        } catch {
            lastError = error
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw TestFailure("timed out after \(timeout) waiting for \(what)" + (lastError.map { " (last error: \($0))" } ?? ""))
}

import ClusterState
import Foundation
import Manager
import Raft
import Storage
import Testing

/// Three (or more) managers in one process over a LocalPeerNetwork.
final class ManagerGroup: @unchecked Sendable {
    let network = LocalPeerNetwork()
    var members: [NodeID: ManagerRaft] = [:]
    var storages: [NodeID: RaftStorage] = [:]
    let voters: [NodeID]

    init(voters: [NodeID], storage: (NodeID) throws -> RaftStorage = { _ in MemoryRaftStorage() }, snapshotEvery: UInt64 = 10_000) throws {
        self.voters = voters
        for id in voters {
            storages[id] = try storage(id)
            try start(id, snapshotEvery: snapshotEvery)
        }
    }

    func start(_ id: NodeID, snapshotEvery: UInt64 = 10_000) throws {
        var configuration = ManagerRaft.Configuration(raft: RaftOptions(id: id, seed: id))
        configuration.tickInterval = .milliseconds(10)
        configuration.snapshotEveryEntries = snapshotEvery
        configuration.requestTimeout = .milliseconds(500)
        let member = try ManagerRaft(configuration: configuration, storage: storages[id]!, transport: network.transport(for: id), bootstrapVoters: voters)
        members[id] = member
        network.attach(id, member)
        member.start()
    }

    func stop(_ id: NodeID) {
        network.detach(id)
        members[id]?.stop()
        members[id] = nil
    }

    func stopAll() { for id in members.keys.sorted() { stop(id) } }

    /// Waits for a leader among the running members other than `excluding`.
    func leader(excluding: NodeID? = nil, timeout: Duration = .seconds(10)) async throws -> ManagerRaft {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for (id, member) in members.sorted(by: { $0.key < $1.key }) where id != excluding && member.status.role == .leader {
                return member
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ManagerTestError("no leader within \(timeout)")
    }
}

struct ManagerTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func serviceSpec(_ name: String, replicas: Int = 1) -> Service.Spec {
    Service.Spec(name: name, mode: .replicated(replicas: replicas), task: TaskTemplate(image: "busybox:latest"))
}

@Suite("ManagerRaft: the Raft shell of a manager", .timeLimit(.minutes(2)))
struct ManagerRaftTests {
    @Test("a write on the leader commits, and linearizable reads on every member see it")
    func writeThenReadEverywhere() async throws {
        let group = try ManagerGroup(voters: [1, 2, 3])
        defer { group.stopAll() }
        let leader = try await group.leader()
        let events = try await leader.propose(.createService(id: "web", spec: serviceSpec("web")), timeMilliseconds: 5)
        #expect(events.map(\.action) == [.created])
        for id: NodeID in [1, 2, 3] {
            let name = try await group.members[id]!.read { $0.service("web")?.spec.name }
            #expect(name == "web")
        }
    }

    @Test("a follower refuses writes and names the leader")
    func followerRefusesWrites() async throws {
        let group = try ManagerGroup(voters: [1, 2, 3])
        defer { group.stopAll() }
        let leader = try await group.leader()
        let followerID = [NodeID(1), 2, 3].first { $0 != leader.status.id }!
        // Wait until the follower has heard from the leader.
        while group.members[followerID]!.status.leader == 0 { try await Task.sleep(for: .milliseconds(10)) }
        await #expect(throws: ManagerError.raft(.notLeader(leader: leader.status.id))) {
            _ = try await group.members[followerID]!.propose(.createService(id: "web", spec: serviceSpec("web")), timeMilliseconds: 0)
        }
    }

    @Test("a command the state machine refuses comes back as an error and changes nothing")
    func rejectedCommand() async throws {
        let group = try ManagerGroup(voters: [1])
        defer { group.stopAll() }
        let leader = try await group.leader()
        _ = try await leader.propose(.createService(id: "web", spec: serviceSpec("web")), timeMilliseconds: 0)
        await #expect(throws: ManagerError.rejected(.nameInUse(kind: .service, name: "web", id: "web"))) {
            _ = try await leader.propose(.createService(id: "other", spec: serviceSpec("web")), timeMilliseconds: 0)
        }
        let count = try await leader.read { $0.services.count }
        #expect(count == 1)
    }

    @Test("a validated proposal the state refuses never reaches the log")
    func validatedProposalStaysOutOfTheLog() async throws {
        let group = try ManagerGroup(voters: [1])
        defer { group.stopAll() }
        let leader = try await group.leader()
        let created = try await leader.propose(.createService(id: "web", spec: serviceSpec("web")), timeMilliseconds: 0, validate: true)
        let commitIndex = try #require(created.first).index
        await #expect(throws: ManagerError.rejected(.nameInUse(kind: .service, name: "web", id: "web"))) {
            _ = try await leader.propose(.createService(id: "other", spec: serviceSpec("web")), timeMilliseconds: 0, validate: true)
        }
        await #expect(throws: ManagerError.rejected(.versionConflict(kind: .service, id: "web", expected: 99, actual: commitIndex))) {
            _ = try await leader.propose(.updateService(id: "web", expectedVersion: 99, spec: serviceSpec("web"), force: false), timeMilliseconds: 0, validate: true)
        }
        // A linearizable read: the state holds every committed entry, and none came after the create.
        let appliedIndex = try await leader.read { $0.appliedIndex }
        #expect(appliedIndex == commitIndex)
    }

    @Test("killing the leader under a stream of writes loses no acknowledged write")
    func leaderFailover() async throws {
        let group = try ManagerGroup(voters: [1, 2, 3])
        defer { group.stopAll() }
        var acknowledged: [String] = []
        var leader = try await group.leader()
        for number in 0..<60 {
            if number == 30 {
                let old = leader.status.id
                group.stop(old)
                leader = try await group.leader(excluding: old)
            }
            let name = "svc-\(number)"
            do {
                _ = try await leader.propose(.createSecret(id: ObjectID(name)!, spec: .init(name: name, data: [1])), timeMilliseconds: 0)
                acknowledged.append(name)
            } catch {
                leader = try await group.leader()
            }
        }
        #expect(acknowledged.count >= 55)
        let stored = try await leader.read { Set($0.secrets.map(\.spec.name)) }
        for name in acknowledged { #expect(stored.contains(name)) }
    }

    @Test("a member restarted from SQLite after compaction catches up from the leader's snapshot")
    func restartCatchesUpFromSnapshot() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-manager-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let group = try ManagerGroup(voters: [1, 2, 3], storage: { id in
            try SQLiteRaftStorage(path: directory.appendingPathComponent("member\(id).sqlite").path)
        }, snapshotEvery: 20)
        defer { group.stopAll() }
        var leader = try await group.leader()
        let lagging = [NodeID(1), 2, 3].first { $0 != leader.status.id }!
        group.stop(lagging)
        for number in 0..<80 {
            let id = ObjectID("cfg-\(number)")!
            _ = try await leader.propose(.createConfig(id: id, spec: .init(name: "cfg-\(number)", data: [UInt8(number)])), timeMilliseconds: 0)
        }
        #expect(leader.status.snapshotIndex > 20)
        group.storages[lagging] = try SQLiteRaftStorage(path: directory.appendingPathComponent("member\(lagging).sqlite").path)
        try group.start(lagging, snapshotEvery: 20)
        leader = try await group.leader()
        let expected = try await leader.read { $0.snapshot() }
        let deadline = ContinuousClock.now + .seconds(10)
        var caughtUp = false
        while ContinuousClock.now < deadline && !caughtUp {
            let mine = try await group.members[lagging]!.read(linearizable: false) { $0.configs.count }
            caughtUp = mine == 80
            if !caughtUp { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(caughtUp)
        let configs = try await group.members[lagging]!.read { $0.configs.map(\.spec.name).sorted() }
        #expect(configs == (0..<80).map { "cfg-\($0)" }.sorted())
        #expect(!expected.isEmpty)
    }

    @Test("without a quorum, writes and linearizable reads time out with a typed error instead of hanging")
    func quorumLossTimesOut() async throws {
        let group = try ManagerGroup(voters: [1, 2, 3])
        defer { group.stopAll() }
        let leader = try await group.leader()
        let survivor = leader.status.id
        for id: NodeID in [1, 2, 3] where id != survivor { group.stop(id) }
        let started = ContinuousClock.now
        do {
            _ = try await leader.propose(.createService(id: "web", spec: serviceSpec("web")), timeMilliseconds: 0)
            Issue.record("a write without a quorum must not succeed")
        } catch let error as ManagerError {
            switch error {
            case .timedOut, .raft: break
            default: Issue.record("unexpected error \(error)")
            }
        }
        do {
            _ = try await leader.read { $0.services.count }
            Issue.record("a linearizable read without a quorum must not succeed")
        } catch let error as ManagerError {
            switch error {
            case .timedOut, .raft, .readInterrupted: break
            default: Issue.record("unexpected error \(error)")
            }
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        let stale = try await leader.read(linearizable: false) { $0.services.count }
        #expect(stale == 0)
    }

    @Test("watchers receive the changes as they are applied")
    func watch() async throws {
        let group = try ManagerGroup(voters: [1])
        defer { group.stopAll() }
        let leader = try await group.leader()
        let stream = leader.watch()
        _ = try await leader.propose(.createService(id: "web", spec: serviceSpec("web")), timeMilliseconds: 0)
        var iterator = stream.makeAsyncIterator()
        let event = await iterator.next()
        #expect(event?.id == "web")
        #expect(event?.action == .created)
    }

    @Test("a filtered watcher sees only the events it accepts, live and from the change log")
    func filteredWatch() async throws {
        let group = try ManagerGroup(voters: [1])
        defer { group.stopAll() }
        let leader = try await group.leader()
        let onlyServices = leader.watch(filter: { $0.kind == .service })
        _ = try await leader.propose(.createSecret(id: "s1", spec: .init(name: "s1", data: [1])), timeMilliseconds: 0)
        _ = try await leader.propose(.createService(id: "web", spec: serviceSpec("web")), timeMilliseconds: 0)
        _ = try await leader.propose(.createSecret(id: "s2", spec: .init(name: "s2", data: [2])), timeMilliseconds: 0)
        _ = try await leader.propose(.createService(id: "api", spec: serviceSpec("api")), timeMilliseconds: 0)
        var live = onlyServices.makeAsyncIterator()
        #expect(await live.next()?.id == "web")
        #expect(await live.next()?.id == "api", "the secret in between was delivered")
        // Resuming from the change log filters the backlog the same way.
        var backlog = leader.watch(after: 0, filter: { $0.kind == .secret }).makeAsyncIterator()
        #expect(await backlog.next()?.id == "s1")
        #expect(await backlog.next()?.id == "s2")
    }

    @Test("membership: add a fourth manager as learner, promote it, and it holds the state")
    func addManager() async throws {
        let group = try ManagerGroup(voters: [1, 2, 3])
        defer { group.stopAll() }
        let leader = try await group.leader()
        _ = try await leader.propose(.createService(id: "web", spec: serviceSpec("web")), timeMilliseconds: 0)
        // Member 4 starts empty (no bootstrap) and waits to be contacted.
        group.storages[4] = MemoryRaftStorage()
        var configuration = ManagerRaft.Configuration(raft: RaftOptions(id: 4, seed: 4))
        configuration.tickInterval = .milliseconds(10)
        let newcomer = try ManagerRaft(configuration: configuration, storage: group.storages[4]!, transport: group.network.transport(for: 4), bootstrapVoters: nil)
        group.members[4] = newcomer
        group.network.attach(4, newcomer)
        newcomer.start()
        try await leader.changeMembership(.addLearner(4))
        try await leader.changeMembership(.promote(4))
        #expect(leader.status.configuration.voters == [1, 2, 3, 4])
        let name = try await newcomer.read { $0.service("web")?.spec.name }
        #expect(name == "web")
    }
}

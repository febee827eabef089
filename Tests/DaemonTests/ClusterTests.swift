import Daemon
import Foundation
import HTTP
import Testing

@Suite("Manager cluster through the daemon's control API", .serialized, .timeLimit(.minutes(3)))
struct ClusterTests {
    @Test("3 managers and a worker: node ls, join tokens, promote/demote, leader loss under writes, restart from the log")
    func membershipAndFailover() async throws {
        try await TestCluster.with { cluster in
            let initialized = try await cluster.startManagers(workers: ["w1"])

            // node ls from a follower: 4 nodes, exactly one leader, three managers.
            let leader = try await cluster.waitForLeader()
            let follower = ["m1", "m2", "m3"].first { $0 != leader }!
            let nodes = try await cluster.nodes(via: follower)
            #expect(nodes.count == 4)
            #expect(nodes.filter { $0.managerStatus?.leader == true }.count == 1)
            #expect(nodes.filter { $0.managerStatus != nil }.count == 3)
            #expect(nodes.first { $0.status.hostname == "w1" }?.spec.role.rawValue == "worker")
            let inspect: ClusterView = try await cluster.client(follower).call(.get, "/v1/cluster")
            #expect(inspect.raft.voters.count == 3)
            #expect(inspect.members.filter(\.leader).count == 1)

            // A wrong token and a rotated token are refused; the current one works.
            try await cluster.start("x1")
            let wrong = "SHOAL-1-\(initialized.workerToken.split(separator: "-")[2])-\(String(repeating: "a", count: 32))"
            let refused = try await cluster.client("x1").send(.post, "/v1/join", json: JoinRequest(token: wrong, address: initialized.advertiseAddress, listenAddress: "127.0.0.1:0"))
            #expect(refused.status == 403, "\(refused.text)")
            let rotated: RotatedTokenView = try await cluster.client(follower).call(.post, "/v1/join-tokens/worker/rotate")
            #expect(rotated.token != initialized.workerToken)
            let old = try await cluster.client("x1").send(.post, "/v1/join", json: JoinRequest(token: initialized.workerToken, address: initialized.advertiseAddress, listenAddress: "127.0.0.1:0"))
            #expect(old.status == 403, "\(old.text)")
            let status: DaemonStatus = try await cluster.client("x1").call(.get, "/v1/status")
            #expect(status.role == "none")
            // Rotation is replicated: every manager returns the new token.
            for name in ["m1", "m2", "m3"] {
                let tokens: JoinTokensView = try await cluster.client(name).call(.get, "/v1/join-tokens")
                #expect(tokens.worker == rotated.token)
            }
            await cluster.stop("x1")

            // Promote the worker to a manager, then demote it back.
            let workerID = nodes.first { $0.status.hostname == "w1" }!.id
            let _: NodeView = try await cluster.client(follower).call(.post, "/v1/nodes/\(workerID)/promote")
            try await eventually("w1 to become a voter", timeout: .seconds(30)) {
                let view: ClusterView = try await cluster.client("m1").call(.get, "/v1/cluster")
                return view.raft.voters.count == 4 && view.members.contains { $0.nodeID == workerID && $0.suffrage == "voter" } ? true : nil
            }
            try await eventually("w1's daemon to run as a manager") { cluster.daemon("w1").raftStatus != nil ? true : nil }
            let _: NodeView = try await cluster.client("m1").call(.post, "/v1/nodes/\(workerID)/demote")
            try await eventually("w1 to be removed from Raft and be a worker in the state", timeout: .seconds(30)) {
                let view: ClusterView = try await cluster.client("m1").call(.get, "/v1/cluster")
                let node: NodeView = try await cluster.client("m1").call(.get, "/v1/nodes/\(workerID)")
                return view.raft.voters.count == 3 && node.managerStatus == nil && node.spec.role.rawValue == "worker" ? true : nil
            }
            try await eventually("w1's daemon to run as a worker again", timeout: .seconds(30)) {
                let status: DaemonStatus = try await cluster.client("w1").call(.get, "/v1/status")
                return status.role == "worker" ? true : nil
            }

            // A stream of writes through a follower while the leader dies.
            let oldLeader = try await cluster.waitForLeader(among: ["m1", "m2", "m3"])
            let writer = try cluster.client(["m1", "m2", "m3"].first { $0 != oldLeader }!)
            let acknowledged = Acknowledged()
            let writes = Task {
                var number = 0
                while !Task.isCancelled {
                    number += 1
                    let name = "c\(number)"
                    let response = try? await writer.send(.post, "/v1/configs", json: ["name": name, "data": "AQID"])
                    if response?.status == 201 { acknowledged.add(name) }
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
            try await eventually("some writes before the failover") { acknowledged.count >= 10 ? true : nil }
            await cluster.stop(oldLeader)
            let survivors = ["m1", "m2", "m3"].filter { $0 != oldLeader }
            let newLeader = try await cluster.waitForLeader(among: survivors)
            #expect(newLeader != oldLeader)
            let countAtFailover = acknowledged.count
            try await eventually("writes to continue after the failover") { acknowledged.count >= countAtFailover + 10 ? true : nil }
            writes.cancel()
            _ = await writes.value
            for name in survivors {
                let configs: [ConfigView] = try await cluster.client(name).call(.get, "/v1/configs")
                let stored = Set(configs.map(\.name))
                let lost = acknowledged.names.subtracting(stored)
                #expect(lost.isEmpty, "acknowledged writes lost on \(name): \(lost.sorted())")
            }
            // The API on the survivors keeps answering, and node ls marks the dead manager.
            let afterFailover = try await cluster.nodes(via: survivors[0])
            #expect(afterFailover.filter { $0.managerStatus?.leader == true }.count == 1)

            // The old leader restarts from its SQLite log and catches up.
            try await cluster.start(oldLeader)
            try await cluster.eventuallyInRaft("the restarted manager to catch up") {
                let configs: [ConfigView] = try await cluster.client(oldLeader).call(.get, "/v1/configs?stale=true")
                return acknowledged.names.isSubset(of: Set(configs.map(\.name))) ? true : nil
            }
            let restartedStatus: DaemonStatus = try await cluster.client(oldLeader).call(.get, "/v1/status")
            #expect(restartedStatus.role == "manager")
        }
    }

    @Test("restart after falling behind compaction catches up from a snapshot; quorum loss gives 503 and stale reads; --force-new-cluster recovers")
    func snapshotQuorumLossAndRecovery() async throws {
        try await TestCluster.with(snapshotEveryEntries: 20) { cluster in
            _ = try await cluster.startManagers()
            let leader = try await cluster.waitForLeader()
            let behind = ["m2", "m3"].first { $0 != leader } ?? "m2"
            await cluster.stop(behind)
            let writer = try cluster.client(leader)
            for number in 0..<60 {
                let response = try await writer.send(.post, "/v1/configs", json: ["name": "s\(number)", "data": "AA=="])
                #expect(response.status == 201, "\(response.text)")
            }
            let leaderStatus: DaemonStatus = try await writer.call(.get, "/v1/status")
            #expect((leaderStatus.raft?.snapshotIndex ?? 0) > 0)
            try await cluster.start(behind)
            try await cluster.eventuallyInRaft("the lagging manager to install a snapshot and catch up") {
                let configs: [ConfigView] = try await cluster.client(behind).call(.get, "/v1/configs?stale=true")
                let status: DaemonStatus = try await cluster.client(behind).call(.get, "/v1/status")
                return configs.count == 60 && (status.raft?.snapshotIndex ?? 0) > 0 ? true : nil
            }

            // Quorum loss: only m1 stays.
            await cluster.stop("m2")
            await cluster.stop("m3")
            let m1 = try cluster.client("m1")
            let refused = try await m1.send(.post, "/v1/configs", json: ["name": "after-loss", "data": "AA=="])
            #expect(refused.status == 503, "\(refused.text)")
            #expect(refused.error?.hint.contains("force-new-cluster") == true || refused.error?.code == "not_leader", "\(refused.text)")
            let linearizable = try await m1.send(.get, "/v1/configs")
            #expect(linearizable.status == 503)
            let stale = try await m1.send(.get, "/v1/configs?stale=true")
            #expect(stale.status == 200)
            #expect(stale.isStale)
            let staleConfigs = try JSONDecoder().decode([ConfigView].self, from: Data(stale.body))
            #expect(staleConfigs.count == 60)

            // --force-new-cluster on the survivor: same state, writable, the dead managers demoted.
            let recovered: InitReply = try await m1.call(.post, "/v1/init", json: InitRequest(forceNewCluster: true))
            #expect(!recovered.workerToken.isEmpty)
            let created = try await m1.send(.post, "/v1/configs", json: ["name": "after-recovery", "data": "AA=="])
            #expect(created.status == 201, "\(created.text)")
            // The refused write may or may not be in the survivor's log (503
            // says so); forcing the new cluster commits what the log holds.
            let configs: [ConfigView] = try await m1.call(.get, "/v1/configs")
            #expect((61...62).contains(configs.count))
            #expect(configs.contains { $0.name == "after-recovery" })
            let nodes = try await cluster.nodes(via: "m1")
            #expect(nodes.filter { $0.managerStatus != nil }.count == 1)
            let view: ClusterView = try await m1.call(.get, "/v1/cluster")
            #expect(view.raft.voters.count == 1)
            // A dead (former) manager can now be removed.
            let dead = nodes.first { $0.status.hostname == "m3" }!
            try await m1.perform(.delete, "/v1/nodes/\(dead.id)")
            let remaining = try await cluster.nodes(via: "m1")
            #expect(remaining.count == 2)
        }
    }

    @Test("removing a dead manager with node rm --force")
    func removeDeadManager() async throws {
        try await TestCluster.with { cluster in
            _ = try await cluster.startManagers(["m1", "m2", "m3"])
            _ = try await cluster.waitForLeader()
            let nodes = try await cluster.nodes(via: "m1")
            let victim = ["m2", "m3"].first { $0 != cluster.leaderName() }!
            let victimID = nodes.first { $0.status.hostname == victim }!.id
            await cluster.stop(victim)
            let plain = try await cluster.client("m1").send(.delete, "/v1/nodes/\(victimID)")
            #expect(plain.status == 409, "\(plain.text)")
            try await cluster.client("m1").perform(.delete, "/v1/nodes/\(victimID)?force=true")
            let view: ClusterView = try await cluster.client("m1").call(.get, "/v1/cluster")
            #expect(view.raft.voters.count == 2)
            #expect(try await cluster.nodes(via: "m1").count == 2)
            // Still writable with 2 of 2.
            let created = try await cluster.client("m1").send(.post, "/v1/configs", json: ["name": "after-rm", "data": "AA=="])
            #expect(created.status == 201, "\(created.text)")
        }
    }
}

final class Acknowledged: @unchecked Sendable {
    private let lock = NSLock()
    private var set: Set<String> = []
    func add(_ name: String) { lock.withLock { _ = set.insert(name) } }
    var count: Int { lock.withLock { set.count } }
    var names: Set<String> { lock.withLock { set } }
}

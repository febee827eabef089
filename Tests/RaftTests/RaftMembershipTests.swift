import Testing
@testable import Raft

@Suite("Snapshots, membership changes and leadership transfer")
struct RaftMembershipTests {
    @Test("a member that fell behind a compaction receives the leader's snapshot and then the rest of the log")
    func snapshotCatchesUpLaggard() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(3)
        for number in 1...30 { try cluster.propose("v\(number)", at: 1) }
        cluster.stabilize()
        let applied = cluster.node(1).appliedIndex
        let snapshot = try cluster.nodes[1]!.compact(through: applied, data: Array("state@\(applied)".utf8))
        try cluster.storages[1]!.compact(to: snapshot)
        #expect(cluster.node(1).firstIndex == applied + 1)
        try cluster.propose("after snapshot", at: 1)
        cluster.stabilize()
        cluster.heal()
        cluster.delivered.removeAll()
        cluster.tickAll(times: 3)
        let snapshots = cluster.delivered.filter { $0.kind == .snapshot && $0.to == 3 }
        #expect(snapshots.count == 1)
        #expect(snapshots.first?.snapshot?.data == Array("state@\(applied)".utf8))
        #expect(cluster.node(3).lastIndex == cluster.node(1).lastIndex)
        #expect(cluster.appliedTexts(3).last == "after snapshot")
        #expect(try cluster.storages[3]!.load().snapshot?.metadata.index == applied)
    }

    @Test("a snapshot lost in the network is sent again after an election timeout")
    func lostSnapshotIsResent() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(3)
        for number in 1...5 { try cluster.propose("v\(number)", at: 1) }
        cluster.stabilize()
        let snapshot = try cluster.nodes[1]!.compact(through: cluster.node(1).appliedIndex, data: [1])
        try cluster.storages[1]!.compact(to: snapshot)
        cluster.heal()
        cluster.droppedKinds = [.snapshot]
        cluster.tickAll(times: 3)
        #expect(cluster.node(3).lastIndex < cluster.node(1).lastIndex)
        cluster.droppedKinds = []
        cluster.tickAll(times: 15)
        #expect(cluster.node(3).lastIndex == cluster.node(1).lastIndex)
    }

    @Test("add a learner, promote it, remove a voter, all while proposals keep committing")
    func membershipChangesUnderTraffic() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        try cluster.addEmptyMember(4)
        try cluster.nodes[1]!.proposeConfChange(.addLearner(4))
        try cluster.propose("during learner add", at: 1)
        #expect(throws: RaftError.configurationChangeInProgress) { try cluster.nodes[1]!.proposeConfChange(.promote(4)) }
        cluster.stabilize()
        cluster.tickAll(times: 2)
        #expect(cluster.node(4).configuration == Configuration(voters: [1, 2, 3], learners: [4]))
        #expect(cluster.appliedTexts(4) == ["during learner add"])

        try cluster.nodes[1]!.proposeConfChange(.promote(4))
        try cluster.propose("during promote", at: 1)
        cluster.stabilize()
        cluster.tickAll(times: 2)
        for id in cluster.ids { #expect(cluster.node(id).configuration == Configuration(voters: [1, 2, 3, 4])) }

        try cluster.nodes[1]!.proposeConfChange(.remove(2))
        try cluster.propose("during remove", at: 1)
        cluster.stabilize()
        cluster.tickAll(times: 2)
        #expect(cluster.node(1).configuration == Configuration(voters: [1, 3, 4]))
        // With 2 gone, 1, 3 and 4 form the group: losing 3 leaves a majority of 2 of 3.
        cluster.isolate(3)
        try cluster.propose("without 3", at: 1)
        cluster.stabilize()
        cluster.tickAll(times: 2)
        #expect(cluster.appliedTexts(4).last == "without 3")
    }

    @Test("a learner receives the log but never votes, campaigns or counts towards commit")
    func learnersDoNotVote() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        try cluster.addEmptyMember(4)
        try cluster.nodes[1]!.proposeConfChange(.addLearner(4))
        cluster.stabilize()
        cluster.tickAll(times: 2)
        // 2 and 3 gone: leader 1 plus learner 4 is not a majority.
        cluster.isolate(2)
        cluster.isolate(3)
        let before = cluster.node(1).commitIndex
        try cluster.propose("cannot commit", at: 1)
        cluster.stabilize()
        #expect(cluster.node(4).lastIndex == cluster.node(1).lastIndex)
        #expect(cluster.node(1).commitIndex == before)
        for _ in 0..<60 { cluster.tick(4); cluster.stabilize() }
        #expect(cluster.node(4).role == .follower)
    }

    @Test("invalid membership changes are refused with a reason and change nothing")
    func invalidChanges() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        let before = cluster.node(1).lastIndex
        #expect(throws: RaftError.self) { try cluster.nodes[1]!.proposeConfChange(.addVoter(2)) }
        #expect(throws: RaftError.self) { try cluster.nodes[1]!.proposeConfChange(.promote(9)) }
        #expect(throws: RaftError.self) { try cluster.nodes[1]!.proposeConfChange(.remove(9)) }
        #expect(throws: RaftError.notLeader(leader: 1)) { try cluster.nodes[2]!.proposeConfChange(.addLearner(9)) }
        #expect(cluster.node(1).lastIndex == before)
        var single = TestCluster(voters: [1])
        single.elect(1)
        #expect(throws: RaftError.invalidConfigurationChange("removing member 1 would leave no voters")) {
            try single.nodes[1]!.proposeConfChange(.remove(1))
        }
    }

    @Test("a leader that removes itself hands over and steps down once the removal commits")
    func leaderRemovesItself() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        try cluster.nodes[1]!.proposeConfChange(.remove(1))
        cluster.stabilize()
        cluster.tickAll(times: 30)
        #expect(cluster.node(1).role == .follower)
        let leaders = cluster.leaders
        #expect(leaders.count == 1)
        #expect(leaders.first != 1)
        let newLeader = leaders[0]
        try cluster.propose("after removal", at: newLeader)
        cluster.stabilize()
        cluster.tickAll(times: 2)
        #expect(cluster.appliedTexts(newLeader).last == "after removal")
    }

    @Test("leadership transfer: the target campaigns at once and wins; proposals fail fast meanwhile")
    func leadershipTransfer() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(3)
        try cluster.propose("x", at: 1)
        cluster.stabilize()
        cluster.heal()
        try cluster.nodes[1]!.transferLeadership(to: 3)
        #expect(throws: RaftError.leadershipTransferInProgress(to: 3)) { try cluster.propose("y", at: 1) }
        cluster.stabilize()
        #expect(cluster.node(3).role == .leader)
        #expect(cluster.node(1).role == .follower)
        #expect(cluster.appliedTexts(3).contains("x") || cluster.node(3).lastIndex >= 3)
        #expect(throws: RaftError.invalidTransferTarget(3)) { try cluster.nodes[3]!.transferLeadership(to: 3) }
    }

    @Test("an abandoned transfer (target unreachable) lets the leader accept proposals again")
    func abandonedTransfer() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(3)
        try cluster.nodes[1]!.transferLeadership(to: 3)
        for _ in 0..<12 { cluster.tick(1); cluster.tick(2); cluster.stabilize() }
        #expect(cluster.node(1).role == .leader)
        try cluster.propose("accepted again", at: 1)
    }
}

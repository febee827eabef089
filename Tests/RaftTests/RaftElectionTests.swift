import Testing
@testable import Raft

@Suite("Leader election")
struct RaftElectionTests {
    @Test("a three-member group elects exactly one leader and every member learns it")
    func electsOneLeader() {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.tickAll(times: 30)
        #expect(cluster.leaders.count == 1)
        let leader = cluster.leaders[0]
        for id in cluster.ids { #expect(cluster.node(id).leader == leader) }
        #expect(cluster.node(leader).term == cluster.node(1).term)
    }

    @Test("election timeouts are randomized from the seed, and the same seed gives the same timeouts")
    func randomizedTimeoutsAreSeeded() {
        func firstCampaignTick(seed: UInt64, id: NodeID) -> Int {
            var options = RaftOptions(id: id, seed: seed)
            options.preVote = false
            var node = RaftNode.bootstrap(options: options, voters: [1, 2, 3])
            for tick in 1...100 {
                node.tick()
                if node.role == .candidate { return tick }
            }
            return -1
        }
        let timeouts = (1...20).map { firstCampaignTick(seed: $0, id: 1) }
        #expect(timeouts.allSatisfy { $0 >= 10 && $0 < 20 })
        #expect(Set(timeouts).count > 3)
        #expect(timeouts == (1...20).map { firstCampaignTick(seed: $0, id: 1) })
    }

    @Test("with pre-vote, a member rejoining from a partition does not raise the term or depose the leader")
    func preVoteKeepsTermStable() {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        let term = cluster.node(1).term
        cluster.isolate(3)
        for _ in 0..<100 { cluster.tick(3); cluster.stabilize() }
        #expect(cluster.node(3).term == term, "pre-vote must not bump the term")
        #expect(cluster.node(3).role == .preCandidate)
        cluster.heal()
        cluster.tickAll(times: 5)
        #expect(cluster.node(1).role == .leader)
        #expect(cluster.node(1).term == term)
        #expect(cluster.node(3).leader == 1)
    }

    @Test("without pre-vote a partitioned member does raise its term (the disruption pre-vote prevents)")
    func withoutPreVoteTermGrows() {
        var cluster = TestCluster(voters: [1, 2, 3]) { $0.preVote = false }
        cluster.elect(1)
        let term = cluster.node(1).term
        cluster.isolate(3)
        for _ in 0..<100 { cluster.tick(3); cluster.stabilize() }
        #expect(cluster.node(3).term > term + 3)
    }

    @Test("check-quorum: a leader that cannot hear a majority steps down")
    func checkQuorumStepsDown() {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(1)
        for _ in 0..<25 { cluster.tick(1); cluster.stabilize() }
        #expect(cluster.node(1).role == .follower)
        #expect(cluster.node(1).leader == 0)
    }

    @Test("a vote is granted once per term, and only to a candidate whose log is at least as up to date (§5.4.1)")
    func voteRules() {
        var options = RaftOptions(id: 1)
        options.checkQuorum = false
        var node = RaftNode.bootstrap(options: options, voters: [1, 2, 3])
        _ = node.ready()
        node.advance(Ready(hardState: node.hardState, entries: [node.entry(at: 1)!], mustSync: true))
        // Candidate 2 with a log that is behind (last term 0) is refused.
        node.step(Message(kind: .vote, from: 2, to: 1, term: 5, logTerm: 0, index: 0))
        var ready = node.ready()
        #expect(ready.messages == [Message(kind: .voteResponse, from: 1, to: 2, term: 5, reject: true)])
        node.advance(ready)
        // Candidate 2 with an up-to-date log gets the vote, and the vote is persisted before the answer.
        node.step(Message(kind: .vote, from: 2, to: 1, term: 5, logTerm: 1, index: 1))
        ready = node.ready()
        #expect(ready.hardState?.vote == 2)
        #expect(ready.mustSync)
        #expect(ready.messages == [Message(kind: .voteResponse, from: 1, to: 2, term: 5)])
        node.advance(ready)
        // Candidate 3 in the same term is refused.
        node.step(Message(kind: .vote, from: 3, to: 1, term: 5, logTerm: 1, index: 1))
        ready = node.ready()
        #expect(ready.messages.first?.reject == true)
    }

    @Test("a vote survives a crash: the restarted member does not vote twice in a term")
    func voteSurvivesCrash() throws {
        let storage = MemoryRaftStorage()
        var node = RaftNode.bootstrap(options: RaftOptions(id: 1), voters: [1, 2, 3])
        var ready = node.ready()
        try storage.save(ready)
        node.advance(ready)
        node.step(Message(kind: .vote, from: 2, to: 1, term: 5, logTerm: 1, index: 1))
        ready = node.ready()
        try storage.save(ready)
        node.advance(ready)
        storage.crash()
        var restarted = try RaftNode(options: RaftOptions(id: 1), restoring: storage.load())
        restarted.step(Message(kind: .vote, from: 3, to: 1, term: 5, logTerm: 1, index: 1))
        ready = restarted.ready()
        #expect(ready.messages.first?.reject == true)
    }
}

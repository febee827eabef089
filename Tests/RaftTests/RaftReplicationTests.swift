import Testing
@testable import Raft

@Suite("Log replication and commitment")
struct RaftReplicationTests {
    @Test("a proposal commits on every member and is applied in order")
    func proposalCommitsEverywhere() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        for number in 1...20 { try cluster.propose("put x \(number)", at: 1) }
        cluster.stabilize()
        cluster.tickAll(times: 2)
        let expected = (1...20).map { "put x \($0)" }
        for id in cluster.ids { #expect(cluster.appliedTexts(id) == expected) }
    }

    @Test("proposals batch: many proposals between two Readies leave in one append per follower")
    func proposalsBatch() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.delivered.removeAll()
        for number in 1...50 { try cluster.propose("p\(number)", at: 1) }
        cluster.stabilize()
        let appendsWithEntries = cluster.delivered.filter { $0.kind == .append && !$0.entries.isEmpty }
        #expect(appendsWithEntries.count == 2)
        #expect(appendsWithEntries.allSatisfy { $0.entries.count == 50 })
    }

    @Test("maxBatchBytes splits appends, and pipelining keeps several in flight")
    func batchLimitAndPipelining() throws {
        var options = RaftOptions(id: 1)
        options.maxBatchBytes = 100
        var leader = RaftNode.bootstrap(options: options, voters: [1, 2])
        leader.tick(); leader.tick()
        for _ in 0..<40 { leader.tick() }
        var ready = leader.ready()
        leader.advance(ready)
        let vote = ready.messages.first { $0.kind == .preVote }!
        leader.step(Message(kind: .preVoteResponse, from: 2, to: 1, term: vote.term))
        ready = leader.ready()
        leader.advance(ready)
        leader.step(Message(kind: .voteResponse, from: 2, to: 1, term: leader.term))
        #expect(leader.role == .leader)
        ready = leader.ready()
        leader.advance(ready)
        // Follower 2 confirms it matches at the no-op: the leader switches to pipelining.
        leader.step(Message(kind: .appendResponse, from: 2, to: 1, term: leader.term, index: leader.lastIndex))
        ready = leader.ready()
        leader.advance(ready)
        for _ in 0..<10 { try leader.propose(Array(repeating: 7, count: 60)) }
        ready = leader.ready()
        let appends = ready.messagesBeforePersist.filter { $0.kind == .append }
        #expect(appends.count == 10, "each 84-byte entry exceeds half the 100-byte batch, so one per message, all in flight")
        #expect(appends.allSatisfy { $0.entries.count == 1 })
    }

    @Test("Figure 8: a leader never commits an entry of a previous term by counting replicas")
    func figureEight() throws {
        let leader = try figureEightLeader(bug: nil)
        #expect(leader.commitIndex == 1, "index 2 (term 2) is on a majority but must not commit")
        var committing = leader
        committing.step(Message(kind: .appendResponse, from: 2, to: 1, term: committing.term, index: 3))
        #expect(committing.commitIndex == 1, "two of five hold index 3")
        committing.step(Message(kind: .appendResponse, from: 3, to: 1, term: committing.term, index: 3))
        #expect(committing.commitIndex == 3, "committing the term-4 entry commits index 2 with it")
    }

    #if DEBUG
    @Test("the planted Figure 8 bug commits the previous-term entry (so the simulator has something to catch)")
    func figureEightBug() throws {
        let leader = try figureEightLeader(bug: .commitPreviousTerm)
        #expect(leader.commitIndex == 2)
    }
    #endif

    /// S1 holds [1: config, 2: term-2 entry], wins term 4, and members 2 and 3
    /// acknowledge index 2 but not yet its term-4 no-op at index 3.
    private func figureEightLeader(bug: PlantedBug?) throws -> RaftNode {
        var options = RaftOptions(id: 1)
        options.preVote = false
        options.plantedBug = bug
        let configuration = Configuration(voters: [1, 2, 3, 4, 5])
        let state = PersistentState(
            hardState: HardState(term: 3, vote: 0, commit: 1),
            entries: [
                Entry(term: 1, index: 1, kind: .configuration, data: configuration.encoded()),
                Entry(term: 2, index: 2, data: Array("x=1".utf8)),
            ]
        )
        var node = try RaftNode(options: options, restoring: state)
        while node.role != .candidate { node.tick() }
        #expect(node.term == 4)
        var ready = node.ready()
        node.advance(ready)
        node.step(Message(kind: .voteResponse, from: 2, to: 1, term: 4))
        node.step(Message(kind: .voteResponse, from: 3, to: 1, term: 4))
        #expect(node.role == .leader)
        ready = node.ready()
        node.advance(ready)
        #expect(node.lastIndex == 3)
        node.step(Message(kind: .appendResponse, from: 2, to: 1, term: 4, index: 2))
        node.step(Message(kind: .appendResponse, from: 3, to: 1, term: 4, index: 2))
        return node
    }

    @Test("fast backtracking: a follower with a long divergent log is repaired in a few round trips")
    func fastBacktracking() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        try cluster.propose("common", at: 1)
        cluster.stabilize()
        cluster.isolate(2)
        for number in 0..<200 { try cluster.propose("lost \(number)", at: 1) }
        cluster.stabilize()
        // Now member 2 missed 200 entries; the leader must catch it up without 200 probes.
        cluster.heal()
        cluster.delivered.removeAll()
        cluster.tickAll(times: 3)
        let rejections = cluster.delivered.filter { $0.kind == .appendResponse && $0.reject }
        #expect(rejections.count <= 2)
        #expect(cluster.node(2).lastIndex == cluster.node(1).lastIndex)
    }

    @Test("a follower whose in-flight window filled with lost appends recovers once it answers heartbeats")
    func fullWindowOfLostAppendsRecovers() throws {
        var cluster = TestCluster(voters: [1, 2, 3]) { $0.maxInflightMessages = 4 }
        cluster.elect(1)
        try cluster.propose("seen", at: 1)
        cluster.stabilize()
        cluster.cut.insert([1, 3])
        for number in 0..<10 {
            try cluster.propose("lost \(number)", at: 1)
            cluster.stabilize()
        }
        cluster.heal()
        cluster.tickAll(times: 4)
        #expect(cluster.node(3).lastIndex == cluster.node(1).lastIndex)
    }

    @Test("conflict hints skip a whole divergent term in one step")
    func conflictHintsSkipTerms() throws {
        // Follower log: [1: cfg t1, 2..51: t2]. Leader log: [1: cfg t1, 2..4: t3].
        let configuration = Configuration(voters: [1, 2])
        var followerEntries = [Entry(term: 1, index: 1, kind: .configuration, data: configuration.encoded())]
        for index in 2...51 { followerEntries.append(Entry(term: 2, index: UInt64(index))) }
        var follower = try RaftNode(options: RaftOptions(id: 2), restoring: PersistentState(hardState: HardState(term: 3, commit: 1), entries: followerEntries))
        follower.step(Message(kind: .append, from: 1, to: 2, term: 3, logTerm: 3, index: 60, commit: 1))
        let ready = follower.ready()
        let rejection = try #require(ready.messages.first)
        #expect(rejection.reject)
        #expect(rejection.rejectHint == 51)
        #expect(rejection.logTerm == 2)
        // The leader, whose log has no term-2 entries, jumps straight to index 1.
        var leaderEntries = [Entry(term: 1, index: 1, kind: .configuration, data: configuration.encoded())]
        for index in 2...4 { leaderEntries.append(Entry(term: 3, index: UInt64(index))) }
        let leaderLog = try RaftLog(restoring: PersistentState(hardState: HardState(term: 3, commit: 1), entries: leaderEntries))
        #expect(leaderLog.findConflictByTerm(index: 51, term: 2) == 1)
    }

    @Test("a follower truncates a conflicting uncommitted suffix and takes the leader's entries")
    func truncatesConflictingSuffix() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        try cluster.propose("a", at: 1)
        cluster.stabilize()
        cluster.isolate(1)
        try cluster.propose("doomed 1", at: 1)
        try cluster.propose("doomed 2", at: 1)
        cluster.stabilize()
        cluster.elect(2)
        try cluster.propose("b", at: 2)
        cluster.stabilize()
        cluster.heal()
        cluster.tickAll(times: 5)
        #expect(cluster.node(1).role == .follower)
        for id in cluster.ids { #expect(cluster.appliedTexts(id) == ["a", "b"]) }
        let stored = try cluster.storages[1]!.load().entries.map { String(decoding: $0.data, as: UTF8.self) }
        #expect(!stored.contains("doomed 1"))
    }

    @Test("a proposal without a leader fails fast with a typed error naming the leader if known")
    func proposalWithoutLeader() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        #expect(throws: RaftError.noLeader) { try cluster.propose("x", at: 2) }
        cluster.elect(1)
        #expect(throws: RaftError.notLeader(leader: 1)) { try cluster.propose("x", at: 2) }
        cluster.isolate(3)
        cluster.tickAll(times: 40)
        var lonely = cluster.node(3)
        #expect(lonely.leader == 0)
        #expect(throws: RaftError.noLeader) { try lonely.readIndex(context: [1]) }
    }

    @Test("a crashed and restarted member keeps everything it acknowledged and catches up")
    func restartCatchesUp() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        for number in 1...5 { try cluster.propose("v\(number)", at: 1) }
        cluster.stabilize()
        try cluster.crashAndRestart(3)
        #expect(cluster.node(3).lastIndex == cluster.node(1).lastIndex)
        for number in 6...8 { try cluster.propose("v\(number)", at: 1) }
        cluster.stabilize()
        cluster.tickAll(times: 3)
        #expect(cluster.appliedTexts(3) == (1...8).map { "v\($0)" })
    }
}

@Suite("Progress flow control")
struct ProgressTests {
    @Test("a probe rejection never moves next below match + 1 (found by shoal-sim seed 230)")
    func probeNeverBacktracksBelowMatch() {
        var progress = Progress(next: 6, maxInflightMessages: 4)
        progress.match = 5
        let changed = progress.maybeDecrease(rejected: 5, hint: 2)
        #expect(changed)
        #expect(progress.next == 6)
    }

    @Test("a probe rejection with a hint jumps back to just after the hint")
    func probeJumpsToHint() {
        var progress = Progress(next: 50, maxInflightMessages: 4)
        progress.match = 3
        let changed = progress.maybeDecrease(rejected: 49, hint: 10)
        #expect(changed)
        #expect(progress.next == 11)
        let stale = progress.maybeDecrease(rejected: 49, hint: 10)
        #expect(!stale, "a stale rejection changes nothing")
    }
}

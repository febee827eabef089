import Testing
@testable import Raft

/// The leader writes its own log in parallel with replicating it
/// (dissertation §10.2.1): ``Ready/canPersistAfterAdvance``,
/// ``RaftNode/advance(_:entriesDurable:)`` and ``RaftNode/persisted(through:term:)``.
@Suite("Leader writes in parallel with replication")
struct RaftParallelWriteTests {
    /// A leader's Ready of one new proposal, advanced before its write is durable,
    /// and the followers' acknowledgements of it (persisted by them first).
    private struct Round {
        var cluster: TestCluster
        var ready: Ready
        var acknowledgements: [NodeID: Message]
    }

    private func proposeWithoutPersisting(_ text: String, voters: [NodeID] = [1, 2, 3]) throws -> Round {
        var cluster = TestCluster(voters: voters)
        cluster.elect(1)
        cluster.tickAll(times: 2)
        try cluster.propose(text, at: 1)
        let ready = cluster.nodes[1]!.ready()
        #expect(ready.canPersistAfterAdvance)
        #expect(ready.entries.map { String(decoding: $0.data, as: UTF8.self) } == [text])
        cluster.nodes[1]!.advance(ready, entriesDurable: false)
        var acknowledgements: [NodeID: Message] = [:]
        for message in ready.messagesBeforePersist where message.kind == .append {
            cluster.nodes[message.to]!.step(message)
            let followerReady = cluster.nodes[message.to]!.ready()
            #expect(!followerReady.canPersistAfterAdvance, "a follower persists before it acknowledges")
            try cluster.storages[message.to]!.save(followerReady)
            acknowledgements[message.to] = followerReady.messages.first { $0.kind == .appendResponse }
            cluster.nodes[message.to]!.advance(followerReady)
        }
        return Round(cluster: cluster, ready: ready, acknowledgements: acknowledgements)
    }

    @Test("both followers' durable acknowledgements commit an entry the leader has not yet persisted")
    func followersCommitWithoutTheLeadersWrite() throws {
        var round = try proposeWithoutPersisting("x")
        let index = round.ready.entries.last!.index
        for id: NodeID in [2, 3] { round.cluster.nodes[1]!.step(round.acknowledgements[id]!) }
        #expect(round.cluster.node(1).commitIndex == index)
        #expect(round.cluster.storages[1]!.durableState.entries.last!.index < index, "the leader's own write is still running")
        let next = round.cluster.nodes[1]!.ready()
        #expect(next.committedEntries.last?.index == index, "committed entries are applied while the write runs")
    }

    @Test("the leader counts itself only once its write is reported durable")
    func leaderCountsItselfOnlyWhenDurable() throws {
        var round = try proposeWithoutPersisting("x")
        let last = round.ready.entries.last!
        round.cluster.nodes[1]!.step(round.acknowledgements[2]!)
        #expect(round.cluster.node(1).commitIndex < last.index, "one follower and a leader write still running are not a majority")
        #expect(round.cluster.node(1).matchIndex(of: 1)! < last.index)
        try round.cluster.storages[1]!.save(round.ready)
        round.cluster.nodes[1]!.persisted(through: last.index, term: last.term)
        #expect(round.cluster.node(1).matchIndex(of: 1) == last.index)
        #expect(round.cluster.node(1).commitIndex == last.index)
    }

    @Test("a one-member group commits when its write is durable, not before")
    func singleMemberWaitsForItsWrite() throws {
        var round = try proposeWithoutPersisting("x", voters: [1])
        let last = round.ready.entries.last!
        #expect(round.cluster.node(1).commitIndex < last.index)
        #expect(!round.cluster.node(1).hasReady, "entries handed out once are not handed out again")
        round.cluster.nodes[1]!.persisted(through: last.index, term: last.term)
        #expect(round.cluster.node(1).commitIndex == last.index)
    }

    @Test("a report for entries a newer leader replaced is ignored")
    func staleReportIsIgnored() throws {
        var round = try proposeWithoutPersisting("x")
        let last = round.ready.entries.last!
        // A leader of a newer term replaces the unreplicated entry at that index.
        let newer = Entry(term: last.term + 1, index: last.index, data: Array("y".utf8))
        round.cluster.nodes[1]!.step(Message(
            kind: .append, from: 2, to: 1, term: last.term + 1, logTerm: round.cluster.node(1).term(at: last.index - 1)!,
            index: last.index - 1, entries: [newer], commit: 0))
        #expect(round.cluster.node(1).role == .follower)
        round.cluster.nodes[1]!.persisted(through: last.index, term: last.term)
        let ready = round.cluster.nodes[1]!.ready()
        #expect(ready.entries == [newer], "the replacement is still to be persisted")
        #expect(!ready.canPersistAfterAdvance)
    }

    @Test("a Ready that answers a vote or changes the term must persist before it advances")
    func votesAndTermsAreNeverDeferred() {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll(times: 2)
        // A candidate with a newer term and a longer log deposes the leader and gets its vote.
        cluster.nodes[1]!.step(Message(kind: .vote, from: 2, to: 1, term: 50, logTerm: 50, index: 100, context: Array("transfer".utf8)))
        let ready = cluster.nodes[1]!.ready()
        #expect(ready.hardState?.term == 50)
        #expect(!ready.canPersistAfterAdvance)
    }

    #if DEBUG
    @Test("the planted bug counts the leader's write before it is durable (so the simulator has something to catch)")
    func plantedBugCountsTooEarly() throws {
        var cluster = TestCluster(voters: [1, 2, 3]) { $0.plantedBug = .leaderCountsUnpersisted }
        cluster.elect(1)
        cluster.tickAll(times: 2)
        try cluster.propose("x", at: 1)
        let ready = cluster.nodes[1]!.ready()
        cluster.nodes[1]!.advance(ready, entriesDurable: false)
        #expect(cluster.node(1).matchIndex(of: 1) == ready.entries.last!.index)
    }
    #endif
}

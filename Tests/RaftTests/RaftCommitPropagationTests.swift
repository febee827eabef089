import Testing
@testable import Raft

/// How followers learn the commit index: never from an append of its own
/// (an append and an acknowledgement per follower per commit, for nothing),
/// but from the next append, the next heartbeat, or the answer to a read.
@Suite("Commit propagation")
struct RaftCommitPropagationTests {
    @Test("a commit sends no append of its own: the next proposal's append carries it")
    func commitRidesOnTheNextAppend() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll(times: 2)
        cluster.delivered.removeAll()
        let first = try cluster.propose("one", at: 1)
        cluster.stabilize()
        #expect(cluster.node(1).commitIndex == first)
        // One append per follower with the entry, one acknowledgement back; nothing else.
        #expect(cluster.delivered.map(\.kind).sorted { $0.rawValue < $1.rawValue } == [.append, .append, .appendResponse, .appendResponse])
        #expect(cluster.delivered.allSatisfy { $0.kind != .append || !$0.entries.isEmpty }, "an append without entries was sent")
        for follower: NodeID in [2, 3] {
            #expect(cluster.node(follower).commitIndex < first, "follower \(follower) learned the commit with no message carrying it")
        }
        cluster.delivered.removeAll()
        let second = try cluster.propose("two", at: 1)
        cluster.stabilize()
        for follower: NodeID in [2, 3] {
            #expect(cluster.node(follower).commitIndex == first, "the append of 'two' carries the commit of 'one'")
            #expect(cluster.appliedTexts(follower) == ["one"])
        }
        #expect(cluster.node(1).commitIndex == second)
        #expect(cluster.delivered.filter { $0.kind == .append }.allSatisfy { $0.commit == first && $0.entries.count == 1 })
    }

    @Test("an idle leader's next heartbeat brings every follower to its commit index")
    func heartbeatCarriesTheCommit() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        let index = try cluster.propose("x", at: 1)
        cluster.stabilize()
        cluster.tickAll(times: 1)
        for id in cluster.ids {
            #expect(cluster.node(id).commitIndex == index)
            #expect(cluster.appliedTexts(id) == ["x"])
        }
    }

    @Test("a follower serving a linearizable read takes the commit index from the answer, with no heartbeat")
    func readOnAFollowerDoesNotWaitForAHeartbeat() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll(times: 2)
        let index = try cluster.propose("x", at: 1)
        cluster.stabilize()
        #expect(cluster.node(2).commitIndex < index)
        try cluster.nodes[2]!.readIndex(context: [4])
        cluster.stabilize()
        #expect(cluster.readStates[2] == [ReadState(index: index, context: [4])])
        #expect(cluster.node(2).commitIndex == index)
        #expect(cluster.appliedTexts(2) == ["x"], "the read can be served at once")

        // The answer alone suffices: the leader's heartbeat may not carry the commit
        // (it is capped at what the leader knows this follower holds, and the
        // follower's acknowledgement can still be on its way).
        var follower = RaftNode.bootstrap(options: RaftOptions(id: 2, seed: 1), voters: [1, 2, 3])
        follower.advance(follower.ready())
        follower.step(Message(kind: .append, from: 1, to: 2, term: 2, logTerm: 1, index: 1, entries: [
            Entry(term: 2, index: 2, kind: .normal, data: [2]), Entry(term: 2, index: 3, kind: .normal, data: [3]),
        ], commit: 1))
        follower.step(Message(kind: .heartbeat, from: 1, to: 2, term: 2, commit: 1, readID: 1))
        #expect(follower.commitIndex == 1)
        follower.step(Message(kind: .readIndexResponse, from: 1, to: 2, term: 2, index: 3, context: [9]))
        #expect(follower.commitIndex == 3)
        let ready = follower.ready()
        #expect(ready.readStates == [ReadState(index: 3, context: [9])])
        #expect(ready.committedEntries.map(\.index) == [2, 3])
    }

    @Test("a read answer never commits entries the follower has not matched with the current leader")
    func readAnswerIsCappedByWhatMatchesTheLeader() throws {
        // Follower 2 holds entries 2...3 of term 2 from a leader that lost them.
        var follower = RaftNode.bootstrap(options: RaftOptions(id: 2, seed: 1), voters: [1, 2, 3])
        follower.advance(follower.ready())
        follower.step(Message(kind: .append, from: 1, to: 2, term: 2, logTerm: 1, index: 1, entries: [
            Entry(term: 2, index: 2, kind: .normal, data: [2]), Entry(term: 2, index: 3, kind: .normal, data: [3]),
        ], commit: 1))
        follower.advance(follower.ready())
        #expect(follower.commitIndex == 1)
        // Leader 3 of term 3 (whose log differs at 2...3) answers a read at its commit index 3
        // before any append reached this follower: nothing here may commit beyond 1.
        follower.step(Message(kind: .heartbeat, from: 3, to: 2, term: 3, commit: 1))
        follower.step(Message(kind: .readIndexResponse, from: 3, to: 2, term: 3, index: 3, context: [1]))
        #expect(follower.commitIndex == 1)
        // Once leader 3's append matched through 3 (replacing term 2's entries), a later answer commits.
        follower.step(Message(kind: .append, from: 3, to: 2, term: 3, logTerm: 1, index: 1, entries: [
            Entry(term: 3, index: 2, kind: .normal, data: [7]), Entry(term: 3, index: 3, kind: .normal, data: [8]),
        ], commit: 1))
        #expect(follower.commitIndex == 1)
        follower.step(Message(kind: .readIndexResponse, from: 3, to: 2, term: 3, index: 3, context: [2]))
        #expect(follower.commitIndex == 3)
        #expect(follower.entry(at: 3)?.term == 3)
    }
}

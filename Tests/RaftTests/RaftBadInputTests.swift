import Testing
@testable import Raft

@Suite("Bad input never crashes a member or corrupts its log")
struct RaftBadInputTests {
    private func settledCluster() throws -> TestCluster {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        try cluster.propose("a", at: 1)
        try cluster.propose("b", at: 1)
        cluster.stabilize()
        return cluster
    }

    @Test("misaddressed, self-sent and unknown-sender messages are dropped")
    func misaddressed() throws {
        var cluster = try settledCluster()
        var leader = cluster.node(1)
        let before = leader.hardState
        leader.step(Message(kind: .append, from: 2, to: 9, term: 99))
        leader.step(Message(kind: .vote, from: 1, to: 1, term: 99))
        leader.step(Message(kind: .appendResponse, from: 77, to: 1, term: leader.term, index: 2))
        leader.step(Message(kind: .heartbeatResponse, from: 0, to: 1, term: leader.term))
        #expect(leader.hardState == before)
        #expect(leader.role == .leader)
        #expect(leader.droppedMessageCount == 4)
        cluster.nodes[1] = leader
    }

    @Test("stale-term messages are ignored; a stale leader is told the new term")
    func staleTerms() throws {
        var cluster = try settledCluster()
        var follower = cluster.node(2)
        let lastIndex = follower.lastIndex
        follower.step(Message(kind: .append, from: 3, to: 2, term: 0, logTerm: 0, index: 0,
                              entries: [Entry(term: 0, index: 1, data: [1])], commit: 1))
        #expect(follower.lastIndex == lastIndex)
        let ready = follower.ready()
        #expect(ready.messages.contains { $0.kind == .appendResponse && $0.term == follower.term })
        follower.advance(ready)
        cluster.nodes[2] = follower
    }

    @Test("appends with gaps, term inversions or undecodable configurations are dropped whole")
    func malformedAppends() throws {
        let cluster = try settledCluster()
        var follower = cluster.node(2)
        let term = follower.term
        let last = follower.lastIndex
        let lastTerm = follower.term(at: last)!
        let malformed: [[Entry]] = [
            [Entry(term: term, index: last + 2)],
            [Entry(term: term, index: last + 1), Entry(term: term, index: last + 3)],
            [Entry(term: term + 5, index: last + 1)],
            [Entry(term: term, index: last + 1, kind: .configuration, data: [0xff, 0xff])],
            [Entry(term: 0, index: last + 1)],
        ]
        for entries in malformed {
            follower.step(Message(kind: .append, from: 1, to: 2, term: term, logTerm: lastTerm, index: last, entries: entries, commit: last))
        }
        #expect(follower.lastIndex == last)
        #expect(follower.droppedMessageCount == malformed.count)
    }

    @Test("out-of-range indexes: appends beyond the log are rejected with a hint, commits beyond it are capped")
    func outOfRange() throws {
        let cluster = try settledCluster()
        var follower = cluster.node(2)
        let term = follower.term
        let last = follower.lastIndex
        follower.step(Message(kind: .append, from: 1, to: 2, term: term, logTerm: term, index: last + 1000, commit: last + 1000))
        let ready = follower.ready()
        let answer = try #require(ready.messages.first { $0.kind == .appendResponse })
        #expect(answer.reject)
        #expect(answer.rejectHint == last)
        follower.advance(ready)
        follower.step(Message(kind: .heartbeat, from: 1, to: 2, term: term, commit: UInt64.max))
        #expect(follower.commitIndex == last)
        follower.step(Message(kind: .append, from: 1, to: 2, term: term, logTerm: 0, index: UInt64.max, entries: [Entry(term: term, index: 0)]))
        #expect(follower.lastIndex == last)
        var leader = cluster.node(1)
        leader.step(Message(kind: .appendResponse, from: 2, to: 1, term: leader.term, index: UInt64.max))
        #expect(leader.commitIndex <= leader.lastIndex)
    }

    @Test("an append that would overwrite committed entries is refused")
    func overwriteCommitted() throws {
        let cluster = try settledCluster()
        var follower = cluster.node(2)
        let term = follower.term
        let committed = follower.commitIndex
        let before = follower.entry(at: committed)
        follower.step(Message(kind: .append, from: 1, to: 2, term: term, logTerm: term, index: committed - 1,
                              entries: [Entry(term: term, index: committed, data: Array("forged".utf8))], commit: committed))
        #expect(follower.entry(at: committed) == before)
    }

    @Test("corrupt persisted state is refused with a typed error, never a crash")
    func corruptState() {
        let configuration = Configuration(voters: [1]).encoded()
        let cases: [PersistentState] = [
            PersistentState(entries: [Entry(term: 1, index: 2)]),
            PersistentState(entries: [Entry(term: 2, index: 1), Entry(term: 1, index: 2)]),
            PersistentState(entries: [Entry(term: 1, index: 1, kind: .configuration, data: [9, 9, 9])]),
            PersistentState(hardState: HardState(term: 1, commit: 5), entries: [Entry(term: 1, index: 1, kind: .configuration, data: configuration)]),
        ]
        for state in cases {
            #expect {
                _ = try RaftNode(options: RaftOptions(id: 1), restoring: state)
            } throws: { error in
                guard case RaftError.corruptState = error else { return false }
                return true
            }
        }
    }

    @Test("configuration decoding rejects truncated and trailing bytes")
    func configurationDecoding() {
        let bytes = Configuration(voters: [1, 2, 300], learners: [7]).encoded()
        #expect(Configuration(encoded: bytes) == Configuration(voters: [1, 2, 300], learners: [7]))
        for length in 0..<bytes.count { #expect(Configuration(encoded: Array(bytes[0..<length])) == nil) }
        #expect(Configuration(encoded: bytes + [0]) == nil)
        #expect(Configuration(encoded: [1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]) == nil)
    }
}

import Testing
@testable import Raft

@Suite("ReadIndex linearizable reads")
struct RaftReadIndexTests {
    @Test("a read on the leader is confirmed by a quorum at the current commit index")
    func leaderRead() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        try cluster.propose("w", at: 1)
        cluster.stabilize()
        try cluster.nodes[1]!.readIndex(context: [7])
        cluster.stabilize()
        #expect(cluster.readStates[1] == [ReadState(index: cluster.node(1).commitIndex, context: [7])])
    }

    @Test("a follower's read is forwarded and answered with the leader's commit index")
    func followerRead() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        try cluster.propose("w", at: 1)
        cluster.stabilize()
        try cluster.nodes[2]!.readIndex(context: [9])
        cluster.stabilize()
        #expect(cluster.readStates[2] == [ReadState(index: cluster.node(1).commitIndex, context: [9])])
    }

    @Test("a deposed leader that cannot reach a quorum never confirms a read")
    func isolatedLeaderCannotRead() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(1)
        try cluster.nodes[1]!.readIndex(context: [1])
        cluster.stabilize()
        cluster.tickAll(times: 5)
        #expect(cluster.readStates[1, default: []].isEmpty)
    }

    @Test("a new leader answers reads only after committing an entry of its term")
    func readWaitsForTermCommit() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(2)
        cluster.isolate(3)
        cluster.nodes[1]!.tick()
        cluster.heal()
        // Elect 2 but hold back its no-op's acknowledgements.
        cluster.droppedKinds = [.appendResponse]
        cluster.elect(2)
        try cluster.nodes[2]!.readIndex(context: [5])
        cluster.stabilize()
        #expect(cluster.readStates[2, default: []].isEmpty)
        cluster.droppedKinds = []
        cluster.tickAll(times: 2)
        let read = try #require(cluster.readStates[2]?.first)
        #expect(read.index >= cluster.node(2).lastIndex - 0)
        #expect(cluster.node(2).term(at: read.index) == cluster.node(2).term)
    }
}

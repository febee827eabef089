import ClusterState
import Raft
import Testing

@testable import Simulation

/// `shoal-sim cluster`: ClusterState on the Raft core under the Raft
/// simulator's faults, and the API invariants that judge it.
@Suite struct ClusterSimulationTests {
    @Test func sameSeedGivesTheSameRunByteForByte() {
        var options = SimulationOptions(members: 3, workload: .cluster)
        options.recordTrace = true
        let first = RaftSimulation(seed: 5, options: options).run()
        let second = RaftSimulation(seed: 5, options: options).run()
        #expect(first.passed, "\(first.violation.map { "\($0)" } ?? "")")
        #expect(first.traceHash == second.traceHash)
        #expect(first.trace == second.trace)
        #expect(first.clusterHistory == second.clusterHistory)
        #expect(first.clusterHistory.count > 10, "clients made calls")
        #expect(first.replayCommand == "shoal-sim cluster --seed 5 --members 3 --duration 3000")
    }

    /// A few hundred seeds of the default fault mix; coverage marks prove the
    /// batch reached compare-and-set refusals, snapshots and crashes.
    @Test(arguments: [(3, 1...120), (5, 1_001...1_030)])
    func cleanSeedsPass(members: Int, seeds: ClosedRange<UInt64>) {
        var options = SimulationOptions(members: members, workload: .cluster)
        // Short runs: many seeds explore more fault mixes than a few long ones.
        options.durationMs = 800
        var totals = SimulationStatistics()
        for seed in seeds {
            let result = RaftSimulation(seed: seed, options: options).run()
            totals.add(result.statistics)
            #expect(result.passed, "\(result.violation!)\n  plan: \(result.plan)\n  replay: \(result.replayCommand)")
            if !result.passed { break }
        }
        #expect(totals.versionConflicts > 0)
        #expect(totals.writesAcknowledged > 0 && totals.readsAnswered > 0)
        #expect(totals.operationsWithUnknownOutcome > 0)
        #expect(totals.snapshotsInstalled > 0)
        #expect(totals.crashes > 0)
    }

    /// Session 1's managers answered a refusal (version conflict, not found)
    /// from the leader's state at once: a leader deposed by a partition, not
    /// knowing it yet, refused from a stale state. The invariants catch it.
    @Test func refusalsFromAStaleLeaderAreCaught() {
        var options = SimulationOptions(members: 3, workload: .cluster)
        options.confirmRefusals = false
        let failures = (20...32).compactMap { RaftSimulation(seed: $0, options: options).run().violation }
        #expect(failures.contains { $0.invariant == "linearizableClusterHistory" }, "\(failures)")
        options.confirmRefusals = true
        #expect(RaftSimulation(seed: 22, options: options).run().passed)
    }

    @Test func commandLineRunsTheClusterSimulation() {
        #expect(SimulationCommandLine.run(["cluster", "--seeds", "2", "--duration", "500"]) == 0)
        #expect(SimulationCommandLine.run(["kubernetes"]) == 2)
    }

    // MARK: The invariants catch what they exist for

    private static func call(_ client: UInt64, _ sequence: UInt64, _ kind: ClusterOperation.Kind, expect: UInt64 = 0) -> ClusterOperation {
        ClusterOperation(client: client, sequence: sequence, kind: kind, service: 1, expectedVersion: expect,
                         image: "image-\(client)-\(sequence)", invokeTime: 0)
    }

    private static func calls(_ list: [ClusterOperation]) -> [UInt64: ClusterOperation] {
        Dictionary(uniqueKeysWithValues: list.map { (ClusterInvariants.key(client: $0.client, sequence: $0.sequence), $0) })
    }

    @Test func twoUpdatesFromOneVersionAreALostUpdate() throws {
        let create = Self.call(1, 1, .create)
        let first = Self.call(1, 2, .update, expect: 3)
        let second = Self.call(2, 1, .update, expect: 3)  // read v3 too, and must have been refused
        var invariants = ClusterInvariants()
        try invariants.recordEffect(.init(client: 1, sequence: 1, attempt: 0, outcome: .written(version: 3)), at: 3, time: 0)
        try invariants.recordEffect(.init(client: 1, sequence: 2, attempt: 0, outcome: .written(version: 4)), at: 4, time: 0)
        try invariants.noLostUpdate(calls: Self.calls([create, first, second]), time: 0)
        try invariants.recordEffect(.init(client: 2, sequence: 1, attempt: 0, outcome: .written(version: 5)), at: 5, time: 0)
        #expect(throws: InvariantViolation.self) { try invariants.noLostUpdate(calls: Self.calls([create, first, second]), time: 0) }
    }

    @Test func aFalseVersionConflictIsCaught() throws {
        let create = Self.call(1, 1, .create)
        let update = Self.call(1, 2, .update, expect: 3)
        var invariants = ClusterInvariants()
        try invariants.recordEffect(.init(client: 1, sequence: 1, attempt: 0, outcome: .written(version: 3)), at: 3, time: 0)
        try invariants.recordEffect(.init(client: 1, sequence: 2, attempt: 0, outcome: .refused("versionConflict")), at: 4, time: 0)
        #expect(throws: InvariantViolation.self) { try invariants.noLostUpdate(calls: Self.calls([create, update]), time: 0) }
    }

    @Test func aStaleReadAfterAnAcknowledgedWriteIsNotLinearizable() throws {
        var create = Self.call(1, 1, .create)
        create.returnTime = 10
        create.outcome = .written(version: 3)
        create.witnessIndex = 3
        var update = Self.call(1, 2, .update, expect: 3)
        update.invokeTime = 11
        update.returnTime = 20
        update.outcome = .written(version: 4)
        update.witnessIndex = 4
        var read = Self.call(2, 1, .read)
        read.invokeTime = 21
        read.returnTime = 30
        read.outcome = .read(version: 3, image: create.image)
        read.witnessIndex = 3  // a member that had not applied index 4
        var invariants = ClusterInvariants()
        try invariants.recordEffect(.init(client: 1, sequence: 1, attempt: 0, outcome: .written(version: 3)), at: 3, time: 0)
        try invariants.recordEffect(.init(client: 1, sequence: 2, attempt: 0, outcome: .written(version: 4)), at: 4, time: 0)
        let calls = Self.calls([create, update, read])
        try invariants.linearizableClusterHistory([create, update], calls: calls, time: 0)
        #expect(throws: InvariantViolation.self) { try invariants.linearizableClusterHistory([create, update, read], calls: calls, time: 0) }
        // The same read, invoked before the update returned, may see either version.
        read.invokeTime = 15
        try invariants.linearizableClusterHistory([create, update, read], calls: calls, time: 0)
        // A read claiming a value the log never held at its index is caught too.
        read.outcome = .read(version: 4, image: "image-9-9")
        read.witnessIndex = 4
        #expect(throws: InvariantViolation.self) { try invariants.linearizableClusterHistory([create, update, read], calls: calls, time: 0) }
    }

    @Test func aCallCommittedTwiceIsCaught() throws {
        var invariants = ClusterInvariants()
        try invariants.recordEffect(.init(client: 1, sequence: 1, attempt: 0, outcome: .written(version: 3)), at: 3, time: 0)
        #expect(throws: InvariantViolation.self) {
            try invariants.recordEffect(.init(client: 1, sequence: 1, attempt: 1, outcome: .refused("alreadyExists")), at: 4, time: 0)
        }
    }

    @Test func differingSnapshotsAtOneIndexAreCaught() throws {
        var invariants = ClusterInvariants()
        var state = ClusterState()
        try state.apply(.createService(id: "service-1", spec: Service.Spec(name: "service-1", task: TaskTemplate(image: "a"))),
                        context: ApplyContext(index: 3, timeMilliseconds: 0))
        try invariants.equalSnapshots(member: 1, index: 3, snapshot: state.snapshot(), restoresEqual: true, time: 0)
        try invariants.equalSnapshots(member: 2, index: 3, snapshot: state.snapshot(), restoresEqual: true, time: 0)
        #expect(throws: InvariantViolation.self) {
            try invariants.equalSnapshots(member: 3, index: 3, snapshot: ClusterState().snapshot(), restoresEqual: true, time: 0)
        }
        #expect(throws: InvariantViolation.self) {
            try invariants.equalSnapshots(member: 1, index: 5, snapshot: state.snapshot(), restoresEqual: false, time: 0)
        }
    }

    @Test func clusterEntryRoundTrips() {
        let entry = ClusterEntry(client: 2, sequence: 9, attempt: 1, proposal: [1, 2, 3])
        #expect(ClusterEntry(encoded: entry.encoded()) == entry)
        #expect(ClusterEntry(encoded: KeyValueCommand(client: 1, sequence: 1, key: 1, value: 1).encoded()) == nil)
        #expect(ClusterEntry(encoded: []) == nil)
    }
}

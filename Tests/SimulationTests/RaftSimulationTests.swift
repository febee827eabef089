import Raft
import Testing

@testable import Simulation

@Suite struct RaftSimulationTests {
    @Test func sameSeedGivesTheSameRunByteForByte() {
        var options = SimulationOptions(members: 5)
        options.recordTrace = true
        for seed: UInt64 in [7, 42] {
            let first = RaftSimulation(seed: seed, options: options).run()
            let second = RaftSimulation(seed: seed, options: options).run()
            #expect(first.traceHash == second.traceHash)
            #expect(first.trace == second.trace)
            #expect(first.history == second.history)
            #expect(first.statistics == second.statistics)
            #expect(first.trace.count > 100, "a run records its events")
        }
        // Recording the trace must not change the run itself.
        var untraced = options
        untraced.recordTrace = false
        #expect(RaftSimulation(seed: 7, options: untraced).run().traceHash == RaftSimulation(seed: 7, options: options).run().traceHash)
    }

    @Test func differentSeedsExploreDifferentRuns() {
        let options = SimulationOptions(members: 3)
        let hashes = (1...5).map { RaftSimulation(seed: UInt64($0), options: options).run().traceHash }
        #expect(Set(hashes).count == 5)
    }

    /// A few hundred seeds of the default fault mix, across group sizes.
    @Test(arguments: [(3, 1...150), (5, 1_001...1_040), (7, 2_001...2_020)])
    func cleanSeedsPass(members: Int, seeds: ClosedRange<UInt64>) {
        let options = SimulationOptions(members: members)
        var totals = SimulationStatistics()
        for seed in seeds {
            let result = RaftSimulation(seed: seed, options: options).run()
            totals.add(result.statistics)
            #expect(result.passed, "\(result.violation!)\n  plan: \(result.plan)\n  replay: \(result.replayCommand)")
            if !result.passed { break }
        }
        // Coverage marks: the batch reached the rare paths it exists for.
        #expect(totals.crashes > 0)
        #expect(totals.crashesBetweenSendAndPersist > 0)
        #expect(totals.commitsBeforeLeaderWrite > 0, "a leader committed on its followers' writes while its own still ran")
        #expect(totals.crashesDuringLeaderWrite > 0)
        #expect(totals.partitions > 0)
        #expect(totals.snapshotsInstalled > 0)
        #expect(totals.configurationChangesCommitted > seeds.count)
        #expect(totals.writesAcknowledged > 0 && totals.readsAnswered > 0)
        #expect(totals.linearizabilityUndecided == 0)
    }

    @Test func everyFaultKindCanBeSwitchedOff() {
        var options = SimulationOptions(members: 3)
        options.faults = []
        options.durationMs = 1_000
        let result = RaftSimulation(seed: 3, options: options).run()
        #expect(result.passed)
        #expect(result.statistics.crashes == 0)
        #expect(result.statistics.partitions == 0)
        #expect(result.statistics.messagesDropped == 0)
        #expect(result.statistics.snapshotsTaken == 0)
        #expect(result.statistics.configurationChangesCommitted == 1)  // the founding configuration
        #expect(result.statistics.writesAcknowledged > 0)
    }

    @Test func stepsBoundTheFaultPhase() {
        var options = SimulationOptions(members: 3)
        options.steps = 500
        let result = RaftSimulation(seed: 11, options: options).run()
        #expect(result.passed)
        #expect(result.statistics.events > 500)
        #expect(result.replayCommand == "shoal-sim raft --seed 11 --members 3 --steps 500")
    }

    @Test func replayCommandNamesEveryOption() throws {
        var options = SimulationOptions(members: 5)
        options.durationMs = 2_000
        options.faults = try FaultKind.parseList("crash,loss")
        #expect(options.replayCommand(seed: 99) == "shoal-sim raft --seed 99 --members 5 --duration 2000 --faults loss,crash")
        #expect(throws: SimulationUsageError.self) { try FaultKind.parseList("loss,meteor") }
        #expect(try FaultKind.parseList("all") == FaultKind.allCases)
    }

    @Test func keyValueStoreAppliesARetriedWriteOnce() {
        var store = KeyValueStore()
        let first = store.apply(KeyValueCommand(client: 1, sequence: 1, key: 1, value: 10))
        let second = store.apply(KeyValueCommand(client: 2, sequence: 1, key: 1, value: 20))
        // Client 1's retry of sequence 1 arrives late: it must not overwrite client 2's write.
        let retried = store.apply(KeyValueCommand(client: 1, sequence: 1, key: 1, value: 10))
        #expect(first && second && !retried)
        #expect(store.value(of: 1) == 20)
        #expect(KeyValueStore(serialized: store.serialized()) == store)
        #expect(KeyValueStore(serialized: Array(store.serialized().dropLast())) == nil)
        let command = KeyValueCommand(client: 3, sequence: 9, key: 2, value: 77)
        #expect(KeyValueCommand(encoded: command.encoded()) == command)
        #expect(KeyValueCommand(encoded: []) == nil)
    }

    @Test func eventQueueBreaksTimeTiesInScheduleOrder() {
        var queue = EventQueue<Int>()
        for (value, time) in [(0, 5), (1, 3), (2, 5), (3, 3), (4, 1)] { queue.schedule(value, at: UInt64(time)) }
        var order: [Int] = []
        while let item = queue.pop() { order.append(item.payload) }
        #expect(order == [4, 1, 3, 0, 2])
    }
}

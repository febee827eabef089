import Raft
import Testing

@testable import Simulation

/// The checkers are only as good as the bugs they catch: each defect that a
/// debug build can plant in Raft must make some seed of 1...500 fail.
@Suite struct PlantedBugTests {
    static let maxSeeds: UInt64 = 500

    #if DEBUG
    @Test(arguments: PlantedBug.allCases)
    func plantedBugIsCaught(bug: PlantedBug) {
        var options = SimulationOptions(members: 3)
        options.plantedBug = bug
        var caught: SimulationResult?
        for seed in 1...Self.maxSeeds {
            let result = RaftSimulation(seed: seed, options: options).run()
            if !result.passed {
                caught = result
                break
            }
        }
        #expect(caught != nil, "no seed in 1...\(Self.maxSeeds) caught \(bug.rawValue)")
        if let caught, let violation = caught.violation {
            print("\(bug.rawValue): caught by seed \(caught.seed): \(violation.invariant)")
            // The failure replays: the same seed fails the same way.
            let replay = RaftSimulation(seed: caught.seed, options: options).run()
            #expect(replay.violation == violation)
            #expect(replay.traceHash == caught.traceHash)
        }
    }
    #endif
}

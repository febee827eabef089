import ClusterState
import Scheduler
import Testing

@testable import Simulation

/// `shoal-sim services` in a small configuration (5 managers, a dozen
/// workers, ~150 tasks): the run is deterministic, clean seeds pass, and
/// the planted Scheduler and Orchestrator defects are caught.
@Suite struct ServicesSimulationTests {
    static func options(workers: Int = 12, tasks: Int = 150, durationMs: UInt64 = 3_000) -> SimulationOptions {
        var options = SimulationOptions(members: 5, workload: .services)
        options.workers = workers
        options.tasks = tasks
        options.durationMs = durationMs
        return options
    }

    @Test func sameSeedGivesTheSameRunByteForByte() {
        var options = Self.options()
        options.recordTrace = true
        let first = ServicesSimulation(seed: 3, options: options).run()
        let second = ServicesSimulation(seed: 3, options: options).run()
        #expect(first.passed, "\(first.violation.map { "\($0)" } ?? "")")
        #expect(first.traceHash == second.traceHash)
        #expect(first.trace == second.trace)
        #expect(first.statistics == second.statistics)
        #expect(first.statistics.containersStarted > 100, "the services' tasks ran")
        #expect(first.replayCommand == "shoal-sim services --seed 3 --members 5 --duration 3000 --workers 12 --tasks 150")
    }

    /// A few seeds of the default fault mix; coverage marks prove the batch
    /// reached manager crashes, worker deaths, crashed containers and
    /// operator updates.
    @Test func cleanSeedsPass() {
        var totals = SimulationStatistics()
        for seed in UInt64(1)...5 {
            let result = ServicesSimulation(seed: seed, options: Self.options()).run()
            totals.add(result.statistics)
            #expect(result.passed, "\(result.violation!)\n  plan: \(result.plan)\n  replay: \(result.replayCommand)")
        }
        #expect(totals.crashes > 0)
        #expect(totals.workersKilled > 0)
        #expect(totals.containersCrashed > 0)
        #expect(totals.writesAcknowledged > 5, "the operator changed services after creating them")
        #expect(totals.leaderTerms > 5)
    }

    #if DEBUG
    /// The checkers are only as good as the bugs they catch: each planted
    /// defect fails a seed of 1...5 with the invariant meant for it, and the
    /// failure replays exactly.
    @Test(arguments: [
        (ServicesPlantedBug.schedulerIgnoresConstraints, ["placementSatisfiesConstraints"]),
        (ServicesPlantedBug.orchestratorKeepsReplacedTask, ["noSlotRunningOnTwoNodes", "atMostOneDesiredRunningTaskPerSlot"]),
    ])
    func plantedBugIsCaught(bug: ServicesPlantedBug, invariants: [String]) {
        var options = Self.options()
        options.servicesPlantedBug = bug
        var caught: SimulationResult?
        for seed in UInt64(1)...5 {
            let result = ServicesSimulation(seed: seed, options: options).run()
            if !result.passed {
                caught = result
                break
            }
        }
        #expect(caught != nil, "no seed in 1...5 caught \(bug.rawValue)")
        guard let caught, let violation = caught.violation else { return }
        #expect(invariants.contains(violation.invariant), "\(violation)")
        #expect(caught.replayCommand.hasSuffix("--bug \(bug.rawValue)"))
        let replay = ServicesSimulation(seed: caught.seed, options: options).run()
        #expect(replay.violation == violation)
        #expect(replay.traceHash == caught.traceHash)
    }
    #endif

    @Test func commandLineRunsTheServicesSimulation() {
        #expect(SimulationCommandLine.run(["services", "--seeds", "1", "--workers", "8", "--tasks", "60", "--duration", "2000"]) == 0)
        #expect(SimulationCommandLine.run(["raft", "--workers", "8"]) == 2)
        #expect(SimulationCommandLine.run(["services", "--tasks", "0"]) == 2)
        #if DEBUG
        #expect(SimulationCommandLine.run(["cluster", "--bug", "scheduler-ignores-constraints"]) == 2)
        #expect(SimulationCommandLine.run(["services", "--seeds", "1", "--workers", "8", "--tasks", "60", "--duration", "2000",
                                           "--bug", "scheduler-ignores-constraints"]) == 1)
        #endif
    }
}

/// The part of a ``FaultPlan`` only `shoal-sim services` uses: worker
/// hosts dying with their containers, the fake runtime's latencies and
/// crashes, and the operator's pace. An agent's session is one ordered
/// stream (TCP), delayed by the network's base delay but never reordered,
/// cut when its manager crashes.
struct ServicesFaults {
    var workerDeathWeight = 0
    /// Workers killed by one nemesis action, and how long they stay down.
    var workersPerDeath: ClosedRange<Int> = 1...3
    var workerDowntimeMs: ClosedRange<UInt64> = 1_000...8_000

    /// The fake runtime: pull and start, stop, crashes, job length.
    var startLatencyMs: ClosedRange<UInt64> = 20...500
    var stopLatencyMs: ClosedRange<UInt64> = 5...100
    var crashProbability = 0.05
    var crashAfterMs: ClosedRange<UInt64> = 100...5_000
    var jobDurationMs: ClosedRange<UInt64> = 200...2_000

    /// The operator's think time between API calls in the fault phase.
    var operatorIntervalMs: ClosedRange<UInt64> = 300...1_500

    var description: String {
        " worker deaths \(workersPerDeath) down \(workerDowntimeMs)ms start \(startLatencyMs)ms crash \(FaultPlan.percent(crashProbability))"
            + " after \(crashAfterMs)ms operator every \(operatorIntervalMs)ms"
    }
}

extension FaultPlan {
    /// The plan of a `services` seed. A minority of managers down at a time
    /// is not enforced (Raft waits for a quorum). The draws keep their
    /// order: each seed's run depends on it.
    static func services(random: inout SimulationRandom, options: SimulationOptions) -> FaultPlan {
        var plan = FaultPlan(workload: options.workload)
        plan.network = NetworkFaults(random: &random, options: options, maxLoss: 0.1, maxDuplicate: 0.05, maxTail: 0.05, tailCeilingMs: 30...300)
        plan.network.baseDelayMs = 1...random.uniform(2...10)
        plan.nemesisIntervalMs = [(200...800), (500...2_000), (1_000...4_000)][random.uniform(0...2)]
        if options.has(.partition) { plan.partitionWeight = random.uniform(1...3) }
        if options.has(.crash) { plan.crashWeight = random.uniform(1...3) }
        if options.has(.workerDeath) { plan.services.workerDeathWeight = random.uniform(1...4) }
        plan.partitionLengthMs = 50...random.uniform(300...2_500)
        plan.crashLeaderProbability = random.unit()
        plan.downtimeMs = 20...random.uniform(200...2_500)
        let maxDeaths = max(1, options.workers / random.uniform(20...100))
        plan.services.workersPerDeath = 1...maxDeaths
        plan.services.workerDowntimeMs = 500...random.uniform(2_000...10_000)
        plan.services.startLatencyMs = 10...random.uniform(100...2_000)
        plan.services.stopLatencyMs = 1...random.uniform(10...300)
        plan.services.crashProbability = random.unit() * 0.15
        plan.services.crashAfterMs = 50...random.uniform(500...8_000)
        plan.services.jobDurationMs = 50...random.uniform(200...3_000)
        plan.services.operatorIntervalMs = 100...random.uniform(500...3_000)
        return plan
    }
}

/// The fault and workload parameters of one `shoal-sim services` run,
/// drawn from its seed. Managers' Raft traffic is lost, duplicated and
/// reordered as in ``FaultPlan``; an agent's session is one ordered stream
/// (TCP), delayed but never reordered, cut when its manager crashes.
/// Faults stay within what the cluster must survive: a minority of
/// managers down at a time is not enforced (Raft waits for a quorum), and
/// workers die as hosts do, with their containers.
struct ServicesFaultPlan: CustomStringConvertible {
    var lossProbability = 0.0
    var duplicateProbability = 0.0
    var tailProbability = 0.0
    var tailDelayMs: ClosedRange<UInt64> = 20...200
    var baseDelayMs: ClosedRange<UInt64> = 1...5

    var nemesisIntervalMs: ClosedRange<UInt64> = 300...1_500
    var partitionWeight = 0
    var crashWeight = 0
    var workerDeathWeight = 0
    var partitionLengthMs: ClosedRange<UInt64> = 100...1_500
    var crashLeaderProbability = 0.5
    var downtimeMs: ClosedRange<UInt64> = 50...1_500
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

    init(random: inout SimulationRandom, options: SimulationOptions) {
        if options.has(.loss) { lossProbability = random.chance(0.3) ? 0.0 : random.unit() * 0.1 }
        if options.has(.duplicate) { duplicateProbability = random.unit() * 0.05 }
        if options.has(.reorder) {
            tailProbability = random.unit() * 0.05
            tailDelayMs = 10...random.uniform(30...300)
        }
        baseDelayMs = 1...random.uniform(2...10)
        nemesisIntervalMs = [(200...800), (500...2_000), (1_000...4_000)][random.uniform(0...2)]
        if options.has(.partition) { partitionWeight = random.uniform(1...3) }
        if options.has(.crash) { crashWeight = random.uniform(1...3) }
        if options.has(.workerDeath) { workerDeathWeight = random.uniform(1...4) }
        partitionLengthMs = 50...random.uniform(300...2_500)
        crashLeaderProbability = random.unit()
        downtimeMs = 20...random.uniform(200...2_500)
        let maxDeaths = max(1, options.workers / random.uniform(20...100))
        workersPerDeath = 1...maxDeaths
        workerDowntimeMs = 500...random.uniform(2_000...10_000)
        startLatencyMs = 10...random.uniform(100...2_000)
        stopLatencyMs = 1...random.uniform(10...300)
        crashProbability = random.unit() * 0.15
        crashAfterMs = 50...random.uniform(500...8_000)
        jobDurationMs = 50...random.uniform(200...3_000)
        operatorIntervalMs = 100...random.uniform(500...3_000)
    }

    var description: String {
        func percent(_ value: Double) -> String { "\(Int((value * 1000).rounded()) / 10)%" }
        return "loss \(percent(lossProbability)) dup \(percent(duplicateProbability)) tail \(percent(tailProbability)) \(tailDelayMs)ms"
            + " delay \(baseDelayMs)ms nemesis every \(nemesisIntervalMs)ms weights p\(partitionWeight)/c\(crashWeight)/w\(workerDeathWeight)"
            + " worker deaths \(workersPerDeath) down \(workerDowntimeMs)ms start \(startLatencyMs)ms crash \(percent(crashProbability))"
            + " after \(crashAfterMs)ms operator every \(operatorIntervalMs)ms"
    }
}

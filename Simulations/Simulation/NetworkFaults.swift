/// What the wire between managers does to messages, drawn from a seed: loss,
/// duplication, and a long tail of delays that reorders. Never corruption.
struct NetworkFaults {
    var lossProbability = 0.0
    var duplicateProbability = 0.0
    /// Chance that a message takes the long tail, so later ones overtake it.
    var tailProbability = 0.0
    var tailDelayMs: ClosedRange<UInt64> = 20...200
    var baseDelayMs: ClosedRange<UInt64> = 1...10

    init() {}

    /// Draws the kinds `options` enables, each up to its ceiling (a
    /// simulation picks the ceilings; the draws' order is part of every
    /// seed's run, so it must not change). `baseDelayMs` is left to the caller.
    init(random: inout SimulationRandom, options: SimulationOptions, maxLoss: Double, maxDuplicate: Double, maxTail: Double,
         tailCeilingMs: ClosedRange<UInt64>) {
        if options.has(.loss) { lossProbability = random.chance(0.3) ? 0.0 : random.unit() * maxLoss }
        if options.has(.duplicate) { duplicateProbability = random.unit() * maxDuplicate }
        if options.has(.reorder) {
            tailProbability = random.unit() * maxTail
            tailDelayMs = 10...random.uniform(tailCeilingMs)
        }
    }

    var description: String {
        "loss \(FaultPlan.percent(lossProbability)) dup \(FaultPlan.percent(duplicateProbability)) tail \(FaultPlan.percent(tailProbability)) \(tailDelayMs)ms"
            + " delay \(baseDelayMs)ms"
    }
}

import Raft

/// The wire between members: per-message delay (mostly a few milliseconds,
/// sometimes a long tail that reorders), loss and duplication, plus the set
/// of directed links a partition has cut. A cut link drops what it carries
/// at delivery time, so messages in flight when a partition starts are lost.
struct SimulatedNetwork {
    var lossProbability: Double
    var duplicateProbability: Double
    var tailProbability: Double
    var baseDelayMs: ClosedRange<UInt64>
    var tailDelayMs: ClosedRange<UInt64>
    /// Cut directed links, keyed by ``link(from:to:)``. Looked up only,
    /// never iterated, so its order cannot reach the run.
    private var cut: Set<UInt64> = []
    /// Bumped by every partition change, so a stale heal is ignored.
    private(set) var generation: UInt64 = 0
    private(set) var isPartitioned = false

    init(faults: NetworkFaults) {
        lossProbability = faults.lossProbability
        duplicateProbability = faults.duplicateProbability
        tailProbability = faults.tailProbability
        baseDelayMs = faults.baseDelayMs
        tailDelayMs = faults.tailDelayMs
    }

    private static func link(from: NodeID, to: NodeID) -> UInt64 { (from << 32) | to }

    func isCut(from: NodeID, to: NodeID) -> Bool {
        isPartitioned && cut.contains(Self.link(from: from, to: to))
    }

    /// Replaces the current partition by one cutting `links`.
    mutating func partition(_ links: [(from: NodeID, to: NodeID)]) -> UInt64 {
        cut = Set(links.map { Self.link(from: $0.from, to: $0.to) })
        isPartitioned = !cut.isEmpty
        generation += 1
        return generation
    }

    mutating func heal() {
        cut = []
        isPartitioned = false
        generation += 1
    }

    /// The calm network of the liveness phase.
    mutating func calm() {
        heal()
        lossProbability = 0
        duplicateProbability = 0
        tailProbability = 0
    }

    /// Delays (ms) of the copies of one message: none if lost, two if duplicated.
    func deliveries(random: inout SimulationRandom) -> [UInt64] {
        if random.chance(lossProbability) { return [] }
        var delays = [delay(random: &random)]
        if random.chance(duplicateProbability) { delays.append(delay(random: &random)) }
        return delays
    }

    private func delay(random: inout SimulationRandom) -> UInt64 {
        random.chance(tailProbability) ? random.uniform(tailDelayMs) : random.uniform(baseDelayMs)
    }
}

import Raft

/// The simulator's source of chance: a ``SeededGenerator`` with the few
/// draws the simulator needs, written out so that a run does not depend on
/// how a toolchain implements `random(in:)`.
struct SimulationRandom {
    private var generator: SeededGenerator

    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    mutating func next() -> UInt64 { generator.next() }

    /// Uniform in `range` (the tiny modulo bias does not matter here).
    mutating func uniform(_ range: ClosedRange<UInt64>) -> UInt64 {
        let span = range.upperBound - range.lowerBound
        if span == UInt64.max { return next() }
        return range.lowerBound + next() % (span + 1)
    }

    mutating func uniform(_ range: ClosedRange<Int>) -> Int {
        Int(uniform(UInt64(range.lowerBound)...UInt64(range.upperBound)))
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// True with probability `probability`.
    mutating func chance(_ probability: Double) -> Bool {
        probability > 0 && unit() < probability
    }

    /// One element of a non-empty array.
    mutating func pick<T>(_ elements: [T]) -> T {
        precondition(!elements.isEmpty, "pick from an empty array")
        return elements[Int(next() % UInt64(elements.count))]
    }

    /// A new independent stream, for one concern of the run.
    mutating func split() -> SimulationRandom { SimulationRandom(seed: next()) }
}

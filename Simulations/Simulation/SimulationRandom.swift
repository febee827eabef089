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

    /// The index of a choice among `weights` in proportion to them; nil when they are all zero.
    mutating func weightedIndex(_ weights: [Int]) -> Int? {
        let total = weights.reduce(0, +)
        guard total > 0 else { return nil }
        var roll = uniform(0...(total - 1))
        var index = 0
        while roll >= weights[index] {
            roll -= weights[index]
            index += 1
        }
        return index
    }

    /// `elements` (two or more) cut at random into two non-empty sides, each sorted.
    mutating func twoSides<T: Comparable>(of elements: [T]) -> (side: [T], other: [T]) {
        var shuffled = elements
        for position in stride(from: shuffled.count - 1, to: 0, by: -1) {
            shuffled.swapAt(position, uniform(0...position))
        }
        let split = uniform(1...(shuffled.count - 1))
        return (Array(shuffled[..<split]).sorted(), Array(shuffled[split...]).sorted())
    }

    /// A new independent stream, for one concern of the run.
    mutating func split() -> SimulationRandom { SimulationRandom(seed: next()) }
}

/// Commit latencies of one run, in nanoseconds.
struct LatencyRecorder {
    private(set) var samples: [UInt64] = []

    init(reserving capacity: Int = 1 << 20) { samples.reserveCapacity(capacity) }

    mutating func record(_ nanoseconds: UInt64) { samples.append(nanoseconds) }

    /// Adds another recorder's samples (one recorder per concurrent caller).
    mutating func merge(_ other: LatencyRecorder) { samples.append(contentsOf: other.samples) }

    var count: Int { samples.count }

    func percentileMicroseconds(_ fraction: Double) -> Double {
        guard !samples.isEmpty else { return 0 }
        let sorted = samples.sorted()
        let rank = min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)
        return Double(sorted[max(rank, 0)]) / 1000
    }
}

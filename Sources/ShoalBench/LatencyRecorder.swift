/// Commit latencies of one run, in nanoseconds.
struct LatencyRecorder {
    private(set) var samples: [UInt64] = []

    init() { samples.reserveCapacity(1 << 20) }

    mutating func record(_ nanoseconds: UInt64) { samples.append(nanoseconds) }

    var count: Int { samples.count }

    func percentileMicroseconds(_ fraction: Double) -> Double {
        guard !samples.isEmpty else { return 0 }
        let sorted = samples.sorted()
        let rank = min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)
        return Double(sorted[max(rank, 0)]) / 1000
    }
}

/// The outcome of one seed.
public struct SimulationResult: Sendable {
    public var seed: UInt64
    /// Nil when every invariant held.
    public var violation: InvariantViolation?
    /// A digest of every event, message and application of the run: equal
    /// for two runs of one seed, byte for byte.
    public var traceHash: UInt64
    /// One line per event, when ``SimulationOptions/recordTrace`` is set.
    public var trace: [String]
    public var statistics: SimulationStatistics
    /// The parameters the seed drew, for the report of a failing seed.
    public var plan: String
    /// The client operations the run recorded.
    public var history: [ClientOperation]
    /// The cluster API calls (`shoal-sim cluster`).
    public var clusterHistory: [ClusterOperation]
    /// The command that replays this seed.
    public var replayCommand: String

    public var passed: Bool { violation == nil }
}

/// Limits on Raft values decoded from peers, beyond the frame limit that
/// bounds every message.
public enum RaftWireLimits {
    /// The most members (voters plus learners) a decoded configuration may
    /// list. The same bound as `Configuration(encoded:)`.
    public static let maxConfigurationMembers = 10_000

    /// The fewest bytes one encoded entry takes: body length, term, index,
    /// kind and data length, one byte each. Bounds the entry count of an
    /// append before its array is reserved.
    public static let minimumEntryBytes = 5
}

/// A checked property that a run broke: which one, when, and the state that
/// shows it. Thrown by the functions of ``RaftInvariants``.
public struct InvariantViolation: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name of the ``RaftInvariants`` function that failed, e.g. `electionSafety`.
    public var invariant: String
    public var details: String
    /// Simulated milliseconds since the start of the run.
    public var time: UInt64

    public init(invariant: String, details: String, time: UInt64 = 0) {
        self.invariant = invariant
        self.details = details
        self.time = time
    }

    public var description: String { "\(invariant) violated at t=\(time)ms: \(details)" }
}

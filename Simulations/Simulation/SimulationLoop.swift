import Raft

/// What a simulation schedules on its ``EventQueue``. The cases every
/// simulation shares are requirements, so the shared fault code
/// (``SimulatedGroup``) can schedule them; enum cases of the same name witness them.
protocol SimulationEventKind {
    /// The event's kind, mixed into the trace hash with its time.
    var code: UInt64 { get }
    /// The fault injector picks its next action.
    static var nemesis: Self { get }
    /// A partition ends, if it is still the current one.
    static func healPartition(generation: UInt64) -> Self
    /// A crashed member restarts from what it persisted.
    static func restart(_ id: NodeID) -> Self
}

/// The simulated-time run loop of `shoal-sim raft`, `cluster` and
/// `services`: pop the next event, advance the clock to it, hash it, let the
/// simulation handle it and check its invariants, end the fault phase after
/// `--steps` events, then run the final checks. A simulation supplies the
/// events and the checks; the loop's order, and so every seed's trace
/// hash, is the same for all of them.
protocol SimulationLoop: AnyObject {
    associatedtype Event: SimulationEventKind

    var seed: UInt64 { get }
    var options: SimulationOptions { get }
    var queue: EventQueue<Event> { get set }
    var now: UInt64 { get set }
    var eventCount: Int { get set }
    var hasher: TraceHasher { get set }
    var trace: [String] { get set }
    var statistics: SimulationStatistics { get set }
    var raftInvariants: RaftInvariants { get }
    var inFaultPhase: Bool { get }
    /// Set by the simulation once its liveness phase has proved what it must.
    var finished: Bool { get }

    /// Schedules the first events.
    func start() throws(InvariantViolation)
    func handle(_ event: Event) throws(InvariantViolation)
    /// The invariants checked after every event (none by default).
    func checkAfterEvent() throws(InvariantViolation)
    /// Heals every fault and starts the liveness phase.
    func endFaults() throws(InvariantViolation)
    func finalChecks() throws(InvariantViolation)
    /// The violation to report when the queue runs dry before ``finished``.
    func unfinished() -> InvariantViolation
    /// The run's outcome once the loop stopped (statistics already filled in).
    func result(violation: InvariantViolation?) -> SimulationResult
}

extension SimulationLoop {
    func checkAfterEvent() throws(InvariantViolation) {}

    /// Runs the seed to the end: a violation, or the liveness proof.
    func runLoop() -> SimulationResult {
        var violation: InvariantViolation?
        do throws(InvariantViolation) {
            try start()
            while !finished, let item = queue.pop() {
                now = item.time
                eventCount += 1
                hasher.combine(now)
                hasher.combine(item.payload.code)
                try handle(item.payload)
                try checkAfterEvent()
                if inFaultPhase, let steps = options.steps, eventCount >= steps { try endFaults() }
            }
            if !finished { throw unfinished() }
            try finalChecks()
        } catch let error {
            violation = error
            record("VIOLATION \(error)")
        }
        statistics.events = eventCount
        statistics.simulatedMs = now
        statistics.leaderTerms = raftInvariants.leaderTermCount
        return result(violation: violation)
    }

    /// A trace line, stamped with the simulated time (kept only with `-v`).
    func record(_ line: @autoclosure () -> String) {
        if options.recordTrace { trace.append("\(now)ms \(line())") }
    }
}

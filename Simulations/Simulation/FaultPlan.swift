import Raft

/// Every fault and workload parameter of one run, drawn from its seed, so
/// each seed explores a different mix (one seed: heavy loss and rare
/// crashes; the next: a calm network and a leader crashing every second).
/// Faults stay within what the cluster must survive: messages are lost,
/// duplicated, delayed and reordered but never corrupted, and disks lose only
/// writes that were never synced.
struct FaultPlan: CustomStringConvertible {
    var lossProbability = 0.0
    var duplicateProbability = 0.0
    /// Chance that a message takes the long tail, so later ones overtake it.
    var tailProbability = 0.0
    var tailDelayMs: ClosedRange<UInt64> = 20...200
    var baseDelayMs: ClosedRange<UInt64> = 1...10

    /// Simulated milliseconds between two nemesis actions.
    var nemesisIntervalMs: ClosedRange<UInt64> = 100...600
    /// Relative weights of the nemesis actions (zero when disabled).
    var partitionWeight = 0
    var crashWeight = 0
    var membershipWeight = 0
    var transferWeight = 0
    var partitionLengthMs: ClosedRange<UInt64> = 50...1_500
    /// When crashing, the chance of picking the leader rather than anyone.
    var crashLeaderProbability = 0.5
    /// When crashing, the chance to crash at the member's next Ready between
    /// sending `messagesBeforePersist` and persisting, rather than at once.
    var crashAtReadyProbability = 0.5
    var downtimeMs: ClosedRange<UInt64> = 10...800
    /// After a crash, the chance to also cut the leader off shortly after
    /// (the combination that exposes acknowledged-but-unpersisted entries).
    var isolateLeaderAfterCrashProbability = 0.0

    /// Applied entries between two snapshots of a member (0: never compact).
    var compactionIntervalEntries: UInt64 = 0
    var maxBatchBytes = 1 << 20
    var maxInflightMessages = 256
    var isLeaderChurn = false
    /// Fault points at interesting moments (FoundationDB's BUGGIFY): cut a
    /// member off shortly after it becomes leader, so its first entries
    /// stay unreplicated; cut a leader off right as it commits, so the
    /// appends it just sent are lost in flight.
    var isolateNewLeaderProbability = 0.0
    var isolateAfterCommitProbability = 0.0

    /// Leaders write their own entries in parallel with replicating them
    /// (``Ready/canPersistAfterAdvance``), each write taking a latency from
    /// `diskLatencyMs`, as the bench and the manager do; otherwise every
    /// Ready is persisted before it advances.
    var leaderWritesInParallel = false
    var diskLatencyMs: ClosedRange<UInt64> = 0...0

    var clients = 3
    var keys: UInt64 = 3
    var writeProbability = 0.5
    var thinkTimeMs: ClosedRange<UInt64> = 0...20
    /// A client gives up on an attempt after this long and retries elsewhere.
    var attemptTimeoutMs: UInt64 = 300
    /// A client gives up on an operation (outcome unknown) after this long.
    var operationTimeoutMs: UInt64 = 2_000

    init(random: inout SimulationRandom, options: SimulationOptions) {
        if options.has(.loss) { lossProbability = random.chance(0.3) ? 0.0 : random.unit() * 0.15 }
        if options.has(.duplicate) { duplicateProbability = random.unit() * 0.1 }
        if options.has(.reorder) {
            tailProbability = random.unit() * 0.1
            tailDelayMs = 10...random.uniform(30...400)
        }
        let slowNetwork = random.chance(0.2)
        baseDelayMs = 1...(slowNetwork ? random.uniform(10...30) : 10)

        let intensity = random.uniform(0...2)
        nemesisIntervalMs = [(30...200), (100...500), (300...1_500)][Int(intensity)]
        if options.has(.partition) { partitionWeight = random.uniform(1...4) }
        if options.has(.crash) { crashWeight = random.uniform(1...4) }
        if options.has(.membership) { membershipWeight = random.uniform(1...3) }
        if options.has(.transfer) { transferWeight = random.uniform(1...2) }
        partitionLengthMs = 20...random.uniform(200...2_000)
        crashLeaderProbability = random.unit()
        crashAtReadyProbability = random.unit()
        downtimeMs = 5...random.uniform(50...1_500)
        if options.has(.crash) && options.has(.partition) {
            isolateLeaderAfterCrashProbability = random.unit() * 0.6
        }

        if options.has(.snapshot) { compactionIntervalEntries = random.uniform(UInt64(4)...64) }
        // Small batches and windows leave followers at different points of
        // the log, which is where the interesting elections happen.
        if random.chance(0.5) {
            maxBatchBytes = random.uniform(1...4) * (KeyValueCommand.encodedBytes + 24)
            maxInflightMessages = random.uniform(1...8)
        }

        // One seed in three is a leader-churn storm: the leader is crashed or
        // cut off every few dozen milliseconds while clients keep proposing to
        // it, so members hold different uncommitted suffixes from several
        // terms and new leaders must reconcile them one small append at a time
        // (the Figure 8 situation of the Raft paper).
        isLeaderChurn = (options.has(.crash) || options.has(.partition)) && random.chance(1.0 / 3.0)
        if isLeaderChurn {
            nemesisIntervalMs = 10...random.uniform(60...200)
            crashLeaderProbability = 0.6 + random.unit() * 0.4
            downtimeMs = 5...random.uniform(30...300)
            partitionLengthMs = 10...random.uniform(50...400)
            // One entry per append: a new leader's no-op never travels with
            // the older entries a follower lacks.
            maxBatchBytes = 1
            maxInflightMessages = random.uniform(1...4)
            if options.has(.crash) { crashWeight = max(crashWeight, partitionWeight) }
            if options.has(.partition) {
                isolateNewLeaderProbability = 0.1 + random.unit() * 0.4
                isolateAfterCommitProbability = 0.02 + random.unit() * 0.15
            }
        }

        clients = random.uniform(2...5)
        keys = random.uniform(UInt64(1)...4)
        writeProbability = 0.3 + random.unit() * 0.5
        thinkTimeMs = 0...random.uniform(0...50)
        attemptTimeoutMs = random.uniform(UInt64(150)...600)
        operationTimeoutMs = attemptTimeoutMs * random.uniform(UInt64(3)...8)

        // Drawn last, so the draws above (and so each seed's other faults) stay as they were.
        leaderWritesInParallel = random.chance(2.0 / 3.0)
        diskLatencyMs = 0...random.uniform(UInt64(1)...40)
    }

    var description: String {
        func percent(_ value: Double) -> String { "\(Int((value * 1000).rounded()) / 10)%" }
        return "loss \(percent(lossProbability)) dup \(percent(duplicateProbability)) tail \(percent(tailProbability)) \(tailDelayMs)ms"
            + " delay \(baseDelayMs)ms nemesis every \(nemesisIntervalMs)ms weights p\(partitionWeight)/c\(crashWeight)/m\(membershipWeight)/t\(transferWeight)"
            + " compact every \(compactionIntervalEntries) batch \(maxBatchBytes)B inflight \(maxInflightMessages)"
            + (isLeaderChurn ? " leader-churn" : "")
            + (leaderWritesInParallel ? " leader-writes-in-parallel disk \(diskLatencyMs)ms" : "") + " clients \(clients) keys \(keys) writes \(percent(writeProbability))"
    }
}

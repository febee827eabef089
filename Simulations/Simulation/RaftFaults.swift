/// The part of a ``FaultPlan`` only `shoal-sim raft` and `cluster` use:
/// membership changes, leadership transfers, crashes inside a Ready, fault
/// points at interesting moments, disks, Raft's limits, and the clients.
struct RaftFaults {
    var membershipWeight = 0
    var transferWeight = 0
    /// When crashing, the chance to crash at the member's next Ready between
    /// sending `messagesBeforePersist` and persisting, rather than at once.
    var crashAtReadyProbability = 0.5
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

    var description: String {
        " compact every \(compactionIntervalEntries) batch \(maxBatchBytes)B inflight \(maxInflightMessages)"
            + (isLeaderChurn ? " leader-churn" : "")
            + (leaderWritesInParallel ? " leader-writes-in-parallel disk \(diskLatencyMs)ms" : "")
            + " clients \(clients) keys \(keys) writes \(FaultPlan.percent(writeProbability))"
    }
}

extension FaultPlan {
    /// The plan of a `raft` or `cluster` seed. The draws keep their order:
    /// each seed's run depends on it.
    static func raft(random: inout SimulationRandom, options: SimulationOptions) -> FaultPlan {
        var plan = FaultPlan(workload: options.workload)
        plan.network = NetworkFaults(random: &random, options: options, maxLoss: 0.15, maxDuplicate: 0.1, maxTail: 0.1, tailCeilingMs: 30...400)
        let slowNetwork = random.chance(0.2)
        plan.network.baseDelayMs = 1...(slowNetwork ? random.uniform(10...30) : 10)

        let intensity = random.uniform(0...2)
        plan.nemesisIntervalMs = [(30...200), (100...500), (300...1_500)][intensity]
        if options.has(.partition) { plan.partitionWeight = random.uniform(1...4) }
        if options.has(.crash) { plan.crashWeight = random.uniform(1...4) }
        if options.has(.membership) { plan.raft.membershipWeight = random.uniform(1...3) }
        if options.has(.transfer) { plan.raft.transferWeight = random.uniform(1...2) }
        plan.partitionLengthMs = 20...random.uniform(200...2_000)
        plan.crashLeaderProbability = random.unit()
        plan.raft.crashAtReadyProbability = random.unit()
        plan.downtimeMs = 5...random.uniform(50...1_500)
        if options.has(.crash) && options.has(.partition) {
            plan.raft.isolateLeaderAfterCrashProbability = random.unit() * 0.6
        }

        if options.has(.snapshot) { plan.raft.compactionIntervalEntries = random.uniform(UInt64(4)...64) }
        // Small batches and windows leave followers at different points of
        // the log, which is where the interesting elections happen.
        if random.chance(0.5) {
            plan.raft.maxBatchBytes = random.uniform(1...4) * (KeyValueCommand.encodedBytes + 24)
            plan.raft.maxInflightMessages = random.uniform(1...8)
        }

        // One seed in three is a leader-churn storm: the leader is crashed or
        // cut off every few dozen milliseconds while clients keep proposing to
        // it, so members hold different uncommitted suffixes from several
        // terms and new leaders must reconcile them one small append at a time
        // (the Figure 8 situation of the Raft paper).
        plan.raft.isLeaderChurn = (options.has(.crash) || options.has(.partition)) && random.chance(1.0 / 3.0)
        if plan.raft.isLeaderChurn {
            plan.nemesisIntervalMs = 10...random.uniform(60...200)
            plan.crashLeaderProbability = 0.6 + random.unit() * 0.4
            plan.downtimeMs = 5...random.uniform(30...300)
            plan.partitionLengthMs = 10...random.uniform(50...400)
            // One entry per append: a new leader's no-op never travels with
            // the older entries a follower lacks.
            plan.raft.maxBatchBytes = 1
            plan.raft.maxInflightMessages = random.uniform(1...4)
            if options.has(.crash) { plan.crashWeight = max(plan.crashWeight, plan.partitionWeight) }
            if options.has(.partition) {
                plan.raft.isolateNewLeaderProbability = 0.1 + random.unit() * 0.4
                plan.raft.isolateAfterCommitProbability = 0.02 + random.unit() * 0.15
            }
        }

        plan.raft.clients = random.uniform(2...5)
        plan.raft.keys = random.uniform(UInt64(1)...4)
        plan.raft.writeProbability = 0.3 + random.unit() * 0.5
        plan.raft.thinkTimeMs = 0...random.uniform(0...50)
        plan.raft.attemptTimeoutMs = random.uniform(UInt64(150)...600)
        plan.raft.operationTimeoutMs = plan.raft.attemptTimeoutMs * random.uniform(UInt64(3)...8)

        // Drawn last, so the draws above (and so each seed's other faults) stay as they were.
        plan.raft.leaderWritesInParallel = random.chance(2.0 / 3.0)
        plan.raft.diskLatencyMs = 0...random.uniform(UInt64(1)...40)
        return plan
    }
}

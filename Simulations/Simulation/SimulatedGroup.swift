import ClusterState
import Raft

/// A simulation of a Raft group of managers under a ``FaultPlan``: what the
/// raft, cluster and services simulations share around their members —
/// partitions and their healing, crashes and restarts, and the end of the
/// fault phase. Each simulation adds its own fault kinds and what its
/// members hold beside the Raft node.
protocol SimulatedGroup: SimulationLoop {
    var plan: FaultPlan { get }
    var network: SimulatedNetwork { get set }
    var nemesisRandom: SimulationRandom { get set }
    var members: [SimulatedMember] { get }
    var inFaultPhase: Bool { get set }
    var healedAt: UInt64? { get set }
    /// What a member is called in the trace ("member", "manager").
    static var memberNoun: String { get }
}

extension SimulatedGroup {
    func currentLeader() -> SimulatedMember? { members.leader }

    /// The run's outcome, with the client histories it recorded.
    func makeResult(_ violation: InvariantViolation?, history: [ClientOperation], clusterHistory: [ClusterOperation]) -> SimulationResult {
        SimulationResult(
            seed: seed, violation: violation, traceHash: hasher.value, trace: trace, statistics: statistics,
            plan: plan.description, history: history, clusterHistory: clusterHistory, replayCommand: options.replayCommand(seed: seed))
    }

    func maxRunningTerm() -> UInt64 { members.highestRunningTerm }

    // MARK: Partitions

    /// The nemesis's partition action begins here: with a partition in
    /// place, it sometimes heals it instead of cutting a new one. True if it did.
    func healedInsteadOfPartitioning() -> Bool {
        guard network.isPartitioned && nemesisRandom.chance(0.3) else { return false }
        network.heal()
        record("partition healed")
        return true
    }

    /// Replaces the current partition by one cutting `links`, until a heal
    /// drawn from ``FaultPlan/partitionLengthMs``. `hashTag` and `hashWord`
    /// mark it in the trace hash.
    func cut(_ links: [(from: NodeID, to: NodeID)], hashTag: UInt64, hashWord: UInt64? = nil, what: String) {
        let generation = network.partition(links)
        statistics.partitions += 1
        hasher.combine(hashTag)
        hasher.combine(hashWord ?? generation)
        record("partition: \(what)")
        queue.schedule(.healPartition(generation: generation), at: now + nemesisRandom.uniform(plan.partitionLengthMs))
    }

    /// The `healPartition` event: heals the partition unless a newer one replaced it.
    func healPartition(generation: UInt64) {
        guard network.generation == generation else { return }
        network.heal()
        record("partition healed")
    }

    // MARK: Crashes

    /// Whom the nemesis crashes: the leader (with ``FaultPlan/crashLeaderProbability``) or any running member.
    func crashVictim() -> SimulatedMember? {
        let running = members.filter(\.isRunning)
        guard !running.isEmpty else { return nil }
        if let leader = currentLeader(), nemesisRandom.chance(plan.crashLeaderProbability) { return leader }
        return nemesisRandom.pick(running)
    }

    /// The member's process dies (its unsynced writes with it); in the fault
    /// phase it restarts after a downtime from ``FaultPlan/downtimeMs``.
    /// The simulation drops what else the process held first.
    func crashed(_ member: SimulatedMember, why: String) {
        member.node = nil
        member.storage.crash()
        statistics.crashes += 1
        hasher.combine(0x4352_4153)  // "CRAS"
        hasher.combine(member.id)
        record("\(Self.memberNoun) \(member.id) crashed \(why)")
        if inFaultPhase {
            queue.schedule(.restart(member.id), at: now + nemesisRandom.uniform(plan.downtimeMs))
        }
    }

    /// Restarts the member's node from what it persisted, with empty
    /// volatile state: the simulation restores its state machine from the
    /// returned snapshot (if any) and replays the log.
    func restartNode(of member: SimulatedMember) throws(InvariantViolation) -> PersistentState {
        let state: PersistentState
        do {
            state = try member.restartNode()
        } catch {
            throw InvariantViolation(
                invariant: "recovery", details: "\(Self.memberNoun) \(member.id) cannot restart from what it persisted: \(error)", time: now)
        }
        member.store = KeyValueStore()
        member.cluster = ClusterState()
        member.clusterDigest = 0
        member.appliedIndex = 0
        member.snapshotIndex = 0
        return state
    }

    /// Marks a restart in the trace hash.
    func hashRestart(of member: SimulatedMember) {
        hasher.combine(0x5245_5354)  // "REST"
        hasher.combine(member.id)
    }

    // MARK: Healing

    /// Ends the fault phase's network faults: partitions heal and the
    /// network calms down. The simulation then restarts what is down.
    func beginHealing(_ what: String) {
        inFaultPhase = false
        healedAt = now
        network.calm()
        hasher.combine(0x4845_414c)  // "HEAL"
        record("faults end: \(what)")
    }
}

import ClusterState
import Raft

/// A whole Raft group in one process, on simulated time, driven by one seed.
///
/// The run has two phases, after TigerBeetle's VOPR and FoundationDB's
/// simulator. In the fault phase the seed's ``FaultPlan`` loses, duplicates
/// and reorders messages, partitions the network, crashes and restarts
/// members (losing unsynced writes), changes the membership and moves the
/// leadership, while clients write and read a key-value store. Then every
/// fault heals and every crashed member restarts, and a proposal must commit
/// and reach every member within ``SimulationOptions/livenessBoundMs``.
/// Every invariant of ``RaftInvariants`` is checked after every event; the
/// client history is checked for linearizability at the end.
///
/// Nothing reads a clock or a global random source, and no `Dictionary` or
/// `Set` order reaches a decision: the same seed gives the same run, byte for
/// byte (``SimulationResult/traceHash``).
public final class RaftSimulation: SimulatedGroup {
    public let seed: UInt64
    public let options: SimulationOptions
    let plan: FaultPlan

    static let tickIntervalMs: UInt64 = 10
    static let electionTimeoutTicks = 10
    /// Spare member ids beyond the founders, for members that join.
    static let spareMemberIDs: UInt64 = 16
    static let maxGroupMembers = 7
    static let minVoters = 3
    static let probeIntervalMs: UInt64 = 50
    static let memberNoun = "member"

    var networkRandom: SimulationRandom
    var nemesisRandom: SimulationRandom
    var clientRandom: SimulationRandom
    var memberSeedRandom: SimulationRandom
    var diskRandom: SimulationRandom
    var network: SimulatedNetwork
    var queue = EventQueue<SimulationEvent>()
    var now: UInt64 = 0

    /// Every member ever started, ascending by id (spares join in id order).
    var members: [SimulatedMember] = []
    var memberPosition: [NodeID: Int] = [:]
    var nextSpareID: NodeID
    let lastSpareID: NodeID
    var clients: [SimulatedClient] = []
    var clusterClients: [ClusterClient] = []
    /// Every cluster call started, by (client << 32 | sequence), as invoked.
    var clusterCalls: [UInt64: ClusterOperation] = [:]
    var clusterHistory: [ClusterOperation] = []
    var clusterInvariants = ClusterInvariants()

    var raftInvariants = RaftInvariants()
    var history: [ClientOperation] = []
    /// (client << 32 | sequence) -> the index at which the write took effect.
    var writeIndex: [UInt64: UInt64] = [:]
    /// The newest configuration any member applied, and its index.
    var committedConfiguration: Configuration
    var committedConfigurationIndex: UInt64 = 1

    var hasher = TraceHasher()
    var trace: [String] = []
    var statistics = SimulationStatistics()
    var eventCount = 0

    var inFaultPhase = true
    var healedAt: UInt64?
    var probeSequence: UInt64 = 0
    /// The index at which the liveness probe first applied.
    var probeIndex: UInt64?
    var finished = false

    public init(seed: UInt64, options: SimulationOptions) {
        precondition(SimulationOptions.allowedMemberCounts.contains(options.members), "members must be 3, 5 or 7")
        self.seed = seed
        self.options = options
        var root = SimulationRandom(seed: seed)
        var planRandom = root.split()
        plan = FaultPlan.raft(random: &planRandom, options: options)
        networkRandom = root.split()
        nemesisRandom = root.split()
        clientRandom = root.split()
        memberSeedRandom = root.split()
        diskRandom = root.split()
        network = SimulatedNetwork(faults: plan.network)
        let founders = (1...UInt64(options.members)).map { NodeID($0) }
        committedConfiguration = Configuration(voters: founders)
        nextSpareID = NodeID(options.members + 1)
        lastSpareID = NodeID(options.members) + Self.spareMemberIDs
    }

    /// Runs the seed to the end: a violation, or the liveness proof.
    public func run() -> SimulationResult { runLoop() }

    func unfinished() -> InvariantViolation {
        InvariantViolation(invariant: "liveness", details: "the event queue ran dry before the liveness probe finished", time: now)
    }

    func result(violation: InvariantViolation?) -> SimulationResult {
        makeResult(violation, history: history, clusterHistory: clusterHistory)
    }

    // MARK: Set-up

    func start() throws(InvariantViolation) {
        record("seed \(seed): \(plan)")
        let founders = committedConfiguration.voters
        for id in founders {
            let member = makeMember(id)
            member.node = RaftNode.bootstrap(options: member.options, voters: founders)
            scheduleFirstTick(member)
        }
        for member in members { try drain(member) }
        for index in 0..<plan.raft.clients {
            switch options.workload {
            case .raft:
                clients.append(SimulatedClient(id: UInt64(index + 1)))
                queue.schedule(.clientStart(client: index), at: clientRandom.uniform(0...50))
            case .cluster:
                clusterClients.append(ClusterClient(id: UInt64(index + 1)))
                queue.schedule(.clusterClientStart(client: index), at: clientRandom.uniform(0...50))
            case .services:
                preconditionFailure("shoal-sim services runs in ServicesSimulation")
            }
        }
        queue.schedule(.nemesis, at: nemesisRandom.uniform(plan.nemesisIntervalMs))
        if options.steps == nil { queue.schedule(.endFaults, at: options.durationMs) }
    }

    func makeMember(_ id: NodeID) -> SimulatedMember {
        var raftOptions = RaftOptions(id: id, seed: memberSeedRandom.next())
        raftOptions.electionTimeoutTicks = Self.electionTimeoutTicks
        raftOptions.heartbeatIntervalTicks = 1
        raftOptions.maxBatchBytes = plan.raft.maxBatchBytes
        raftOptions.maxInflightMessages = plan.raft.maxInflightMessages
        raftOptions.plantedBug = options.plantedBug
        let member = SimulatedMember(id: id, options: raftOptions, storage: MemoryRaftStorage())
        memberPosition[id] = members.count
        members.append(member)
        return member
    }

    func scheduleFirstTick(_ member: SimulatedMember) {
        queue.schedule(.tick(member.id), at: now + memberSeedRandom.uniform(1...Self.tickIntervalMs))
    }

    func member(_ id: NodeID) -> SimulatedMember? {
        guard let position = memberPosition[id] else { return nil }
        return members[position]
    }

    // MARK: Events

    func handle(_ event: SimulationEvent) throws(InvariantViolation) {
        switch event {
        case .tick(let id):
            guard let member = member(id), !member.isStopped else { return }
            queue.schedule(.tick(id), at: now + Self.tickIntervalMs)
            guard member.isRunning else { return }
            hasher.combine(id)
            member.node!.tick()
            try drain(member)
        case .deliver(let message):
            try deliver(message)
        case .restart(let id):
            guard let member = member(id), !member.isRunning, !member.isStopped else { return }
            try restart(member)
        case .writeDurable(let id, let sequence):
            guard let member = member(id), member.isRunning else { return }
            completeWrites(on: member, through: sequence)
            try drain(member)
        case .nemesis:
            guard inFaultPhase else { return }
            try nemesis()
            queue.schedule(.nemesis, at: now + nemesisRandom.uniform(plan.nemesisIntervalMs))
        case .healPartition(let generation):
            healPartition(generation: generation)
        case .isolateLeader:
            guard inFaultPhase, let leader = currentLeader() else { return }
            isolate(leader.id, why: "after a crash")
        case .isolateMember(let id, let term):
            guard inFaultPhase, let member = member(id), let node = member.node, node.role == .leader, node.term == term else { return }
            isolate(id, why: "soon after its election")
        case .clientStart(let client):
            guard inFaultPhase else { return }
            startOperation(client)
        case .clientAttempt(let client, let attempt):
            try attemptOperation(client, attempt: attempt)
        case .clientTimeout(let client, let attempt):
            timeOut(client, attempt: attempt)
        case .clientResponse(let client, let sequence, let value):
            complete(client, sequence: sequence, value: value)
        case .clusterClientStart(let client):
            guard inFaultPhase else { return }
            startClusterOperation(client)
        case .clusterClientAttempt(let client, let sequence, let attempt):
            try attemptClusterOperation(client, sequence: sequence, attempt: attempt)
        case .clusterClientTimeout(let client, let sequence, let attempt):
            timeOutCluster(client, sequence: sequence, attempt: attempt)
        case .clusterClientResponse(let client, let sequence, let outcome, let witnessIndex):
            completeCluster(client, sequence: sequence, outcome: outcome, witnessIndex: witnessIndex)
        case .endFaults:
            if inFaultPhase { try endFaults() }
        case .livenessProbe:
            try probe()
        }
    }

    private func deliver(_ message: Message) throws(InvariantViolation) {
        guard let member = member(message.to), member.isRunning else {
            statistics.messagesDropped += 1
            return
        }
        if network.isCut(from: message.from, to: message.to) {
            statistics.messagesDropped += 1
            return
        }
        hashMessage(message)
        if options.recordTrace { record("deliver \(Self.describe(message))") }
        member.node!.step(message)
        try drain(member)
    }

    func send(_ message: Message) {
        statistics.messagesSent += 1
        hashMessage(message)
        let delays = network.deliveries(random: &networkRandom)
        if delays.isEmpty { statistics.messagesDropped += 1 }
        if delays.count > 1 { statistics.messagesDuplicated += 1 }
        for delay in delays { queue.schedule(.deliver(message), at: now + delay) }
    }

    // MARK: The Ready loop (Sources/Raft/Ready.swift, in its order)

    func drain(_ member: SimulatedMember) throws(InvariantViolation) {
        while member.node?.hasReady == true {
            // What the commit index covers is committed, even if the member
            // crashes before applying it.
            try raftInvariants.recordCommitted(member: member.id, node: member.node!, termBound: maxRunningTerm(), time: now)
            let ready = member.node!.ready()
            hasher.combine(0x5245_4144)  // "READ"
            hasher.combine(member.id)
            hasher.combine(UInt64(ready.entries.count))
            hasher.combine(UInt64(ready.committedEntries.count))
            if let soft = ready.softState {
                try raftInvariants.electionSafety(member: member.id, role: soft.role, term: soft.term, time: now)
                if options.recordTrace {
                    record("member \(member.id) is \(soft.role.rawValue) in term \(soft.term) (leader \(soft.leader))")
                }
                // Cut off at once, so the no-op this Ready sends is lost in flight.
                if soft.role == .leader && inFaultPhase && nemesisRandom.chance(plan.raft.isolateNewLeaderProbability) {
                    queue.schedule(.isolateMember(member.id, term: soft.term), at: now)
                }
            }
            // 1. A leader's replication traffic may leave before its own write.
            for message in ready.messagesBeforePersist { send(message) }
            let persists = ready.hardState != nil || !ready.entries.isEmpty || ready.snapshot != nil
            if member.crashAtNextReady && persists {
                statistics.crashesBetweenSendAndPersist += 1
                crash(member, why: "after sending \(ready.messagesBeforePersist.count) messages, before persisting")
                return
            }
            // 2. Persist — a leader's write in parallel with the rest when the plan says so.
            if let first = ready.entries.first {
                let previousTerm = first.index > 1 ? member.node!.term(at: first.index - 1) : 0
                try raftInvariants.logMatching(member: member.id, entries: ready.entries, previousTerm: previousTerm, time: now)
            }
            let writesInParallel = plan.raft.leaderWritesInParallel && ready.canPersistAfterAdvance
            if writesInParallel {
                if persists { startWrite(ready, on: member) }
            } else {
                // Writes land in order: this one, and the messages it
                // releases, wait for the leader writes still running.
                completeWrites(on: member, through: .max)
                do {
                    try member.storage.save(ready)
                } catch {
                    preconditionFailure("in-memory storage failed: \(error)")
                }
            }
            // 3. Messages that promise what step 2 made durable.
            for message in ready.messages { send(message) }
            // 4. Apply.
            if let last = ready.committedEntries.last,
                member.writesInFlight.contains(where: { ($0.entries.first?.index ?? .max) <= last.index })
            {
                statistics.commitsBeforeLeaderWrite += 1
            }
            if let snapshot = ready.snapshot { try install(snapshot, on: member) }
            for entry in ready.committedEntries {
                try apply(entry, on: member)
                // Applying its own removal shuts the member down.
                if member.isStopped { return }
            }
            for readState in ready.readStates {
                if let position = member.pendingReads.firstIndex(where: { $0.index == nil && $0.context == readState.context }) {
                    member.pendingReads[position].index = readState.index
                }
                if let position = member.pendingClusterReads.firstIndex(where: { $0.index == nil && $0.context == readState.context }) {
                    member.pendingClusterReads[position].index = readState.index
                }
            }
            if !ready.committedEntries.isEmpty && member.node!.role == .leader && inFaultPhase
                && nemesisRandom.chance(plan.raft.isolateAfterCommitProbability)
            {
                isolate(member.id, why: "right after it committed")
            }
            // 5. Advance.
            member.node!.advance(ready, entriesDurable: !writesInParallel)
            answerReads(on: member)
            answerClusterReads(on: member)
            try compactIfDue(member)
        }
    }

    /// Starts a leader's write that completes later, after every earlier one.
    private func startWrite(_ ready: Ready, on member: SimulatedMember) {
        let sequence = member.nextWriteSequence
        member.nextWriteSequence += 1
        member.writesInFlight.append(.init(sequence: sequence, hardState: ready.hardState, entries: ready.entries))
        let durableAt = max(now + diskRandom.uniform(plan.raft.diskLatencyMs), member.lastWriteDurableAt)
        member.lastWriteDurableAt = durableAt
        hasher.combine(0x5752_4954)  // "WRIT"
        hasher.combine(durableAt)
        queue.schedule(.writeDurable(member.id, sequence: sequence), at: durableAt)
    }

    /// Makes the member's writes in flight through `sequence` durable, in
    /// order, and tells its node.
    func completeWrites(on member: SimulatedMember, through sequence: UInt64) {
        while let write = member.writesInFlight.first, write.sequence <= sequence {
            member.writesInFlight.removeFirst()
            do {
                try member.storage.save(hardState: write.hardState, entries: write.entries, snapshot: nil, sync: true)
            } catch {
                preconditionFailure("in-memory storage failed: \(error)")
            }
            if let last = write.entries.last { member.node?.persisted(through: last.index, term: last.term) }
        }
    }

    private func apply(_ entry: Entry, on member: SimulatedMember) throws(InvariantViolation) {
        if entry.index <= member.appliedIndex { return }  // covered by an installed snapshot
        guard entry.index == member.appliedIndex + 1 else {
            throw InvariantViolation(
                invariant: "stateMachineSafety",
                details: "member \(member.id) was handed index \(entry.index) to apply after applying only through \(member.appliedIndex)",
                time: now)
        }
        var isClusterEntry = false
        switch entry.kind {
        case .configuration:
            if let configuration = Configuration(encoded: entry.data) {
                applyConfiguration(configuration, at: entry.index)
            }
        case .normal:
            if let clusterEntry = ClusterEntry(encoded: entry.data) {
                isClusterEntry = true
                try applyCluster(clusterEntry, at: entry.index, on: member)
            } else if let command = KeyValueCommand(encoded: entry.data) {
                if member.store.apply(command) {
                    let key = (command.client << 32) | command.sequence
                    if writeIndex[key] == nil { writeIndex[key] = entry.index }
                }
                if command.client == 0 && healedAt != nil && probeIndex == nil {
                    probeIndex = entry.index
                    record("liveness probe committed at index \(entry.index), \(now - healedAt!) ms after healing")
                }
                respondToWrites(on: member)
            }
        }
        if !isClusterEntry { abandonClusterWrites(at: entry.index, on: member) }
        member.appliedIndex = entry.index
        hasher.combine(entry.index)
        hasher.combine(entry.term)
        let first = try raftInvariants.stateMachineSafety(
            member: member.id, entry: entry, stateDigest: stateDigest(of: member),
            termBound: maxRunningTerm(), time: now)
        if first {
            statistics.entriesCommitted += 1
            if entry.kind == .configuration { statistics.configurationChangesCommitted += 1 }
        }
    }

    private func install(_ snapshot: Snapshot, on member: SimulatedMember) throws(InvariantViolation) {
        guard restoreReplica(member, from: snapshot.data) else {
            throw InvariantViolation(
                invariant: "stateMachineSafety",
                details: "member \(member.id) received a snapshot at index \(snapshot.metadata.index) whose data does not decode",
                time: now)
        }
        member.appliedIndex = snapshot.metadata.index
        member.snapshotIndex = snapshot.metadata.index
        member.waitingClusterWrites = []
        statistics.snapshotsInstalled += 1
        record("member \(member.id) installed a snapshot at index \(snapshot.metadata.index) term \(snapshot.metadata.term)")
        try raftInvariants.stateMachineSafety(
            member: member.id, snapshot: snapshot.metadata, stateDigest: stateDigest(of: member), time: now)
        try checkClusterSnapshot(of: member)
        try checkAcknowledgedWrites(on: member)
        respondToWrites(on: member)
    }

    /// The group's membership moved on: a member that the newest committed
    /// configuration no longer holds is shut down for good (ids are never reused).
    private func applyConfiguration(_ configuration: Configuration, at index: UInt64) {
        guard index > committedConfigurationIndex else { return }
        let removed = committedConfiguration.members.filter { !configuration.contains($0) }
        committedConfiguration = configuration
        committedConfigurationIndex = index
        record("configuration at index \(index) committed: \(configuration)")
        for id in removed {
            guard let gone = member(id) else { continue }
            gone.node = nil
            gone.isStopped = true
            gone.waitingWrites = []
            gone.pendingReads = []
            record("member \(id) removed and shut down")
        }
    }

    private func compactIfDue(_ member: SimulatedMember) throws(InvariantViolation) {
        let interval = plan.raft.compactionIntervalEntries
        guard interval > 0, let node = member.node, member.appliedIndex >= member.snapshotIndex + interval,
            node.appliedIndex == member.appliedIndex
        else { return }
        // A compaction is written after the writes still running.
        completeWrites(on: member, through: .max)
        do {
            let snapshot = try member.node!.compact(through: member.appliedIndex, data: replicaSnapshot(of: member))
            try? member.storage.compact(to: snapshot)
            member.snapshotIndex = member.appliedIndex
            statistics.snapshotsTaken += 1
            hasher.combine(0x534e_4150)  // "SNAP"
            hasher.combine(member.appliedIndex)
        } catch {
            record("member \(member.id) could not compact through \(member.appliedIndex): \(error)")
        }
    }

    // MARK: Crashes

    func crash(_ member: SimulatedMember, why: String) {
        if !member.writesInFlight.isEmpty { statistics.crashesDuringLeaderWrite += 1 }
        member.writesInFlight = []
        member.lastWriteDurableAt = 0
        member.crashAtNextReady = false
        member.waitingWrites = []
        member.pendingReads = []
        member.waitingClusterWrites = []
        member.pendingClusterReads = []
        crashed(member, why: why)
    }

    func restart(_ member: SimulatedMember) throws(InvariantViolation) {
        let state = try restartNode(of: member)
        if let snapshot = state.snapshot {
            guard restoreReplica(member, from: snapshot.data) else {
                throw InvariantViolation(
                    invariant: "recovery", details: "member \(member.id) persisted a snapshot that does not decode", time: now)
            }
            member.appliedIndex = snapshot.metadata.index
            member.snapshotIndex = snapshot.metadata.index
        }
        hashRestart(of: member)
        record("member \(member.id) restarted: term \(state.hardState.term) vote \(state.hardState.vote) commit \(state.hardState.commit), snapshot \(member.snapshotIndex), \(state.entries.count) entries")
        try checkAcknowledgedWrites(on: member)
        try drain(member)
    }

    // MARK: Checks

    func checkAfterEvent() throws(InvariantViolation) {
        for member in members {
            guard let node = member.node else { continue }
            if node.role != member.lastRole || node.term != member.lastTerm {
                member.lastRole = node.role
                member.lastTerm = node.term
            }
            try raftInvariants.electionSafety(member: member.id, role: node.role, term: node.term, time: now)
            try raftInvariants.recordCommitted(member: member.id, node: node, termBound: maxRunningTerm(), time: now)
            try raftInvariants.leaderCompleteness(member: member.id, node: node, time: now)
            try raftInvariants.leaderCommitsOnlyItsOwnTerm(member: member.id, node: node, time: now)
        }
        // The whole log of one member per event, in turn; new entries are
        // checked as each Ready persists them.
        let swept = members[eventCount % members.count]
        if let node = swept.node { try raftInvariants.logMatching(member: swept.id, node: node, time: now) }
        if let healedAt, now > healedAt + options.livenessBoundMs {
            try raftInvariants.liveness(
                healedAt: healedAt, now: now, boundMs: options.livenessBoundMs, committedIndex: probeIndex,
                lagging: laggingMembers().map { "\($0.id) (applied \($0.appliedIndex))" }, state: describeMembers())
        }
    }

    func checkAcknowledgedWrites(on member: SimulatedMember) throws(InvariantViolation) {
        let store = member.store
        try raftInvariants.noAcknowledgedWriteLost(member: member.id, appliedIndex: member.appliedIndex, time: now) {
            store.hasApplied(client: $0, sequence: $1)
        }
        try checkClusterWrites(on: member)
    }

    func finalChecks() throws(InvariantViolation) {
        for member in members where member.isRunning {
            try checkAcknowledgedWrites(on: member)
            try raftInvariants.logMatching(member: member.id, node: member.node!, time: now)
        }
        // A write in flight at the end has an unknown outcome; a read in
        // flight changed nothing and is left out.
        for client in clients {
            if let operation = client.operation, operation.kind == .put {
                history.append(ClientOperation(
                    client: client.id, kind: .put, key: operation.key, value: operation.value,
                    invokeTime: operation.invokeTime, returnTime: nil))
                statistics.operationsWithUnknownOutcome += 1
            }
        }
        if options.workload == .cluster { try finalClusterChecks() }
        if try !raftInvariants.linearizableHistory(history, time: now) {
            statistics.linearizabilityUndecided += 1
            record("linearizability check ran out of budget")
        }
        record("passed: \(history.count) client operations linearizable; \(statistics.entriesCommitted) entries committed")
    }

    // MARK: Helpers

    /// Members of the newest configuration that have not applied the probe.
    func laggingMembers() -> [SimulatedMember] {
        guard let probeIndex else { return [] }
        return committedConfiguration.members.compactMap { member($0) }.filter { $0.appliedIndex < probeIndex }
    }

    func describeMembers() -> String {
        members.filter { !$0.isStopped }.map { member in
            guard let node = member.node else { return "\(member.id): down" }
            return "\(member.id): \(node.role.rawValue) term \(node.term) leader \(node.leader) commit \(node.commitIndex) applied \(member.appliedIndex) log \(node.firstIndex)...\(node.lastIndex) \(node.configuration)"
        }.joined(separator: "; ")
    }

    private func hashMessage(_ message: Message) {
        hasher.combine(UInt64(message.kind.rawValue))
        hasher.combine((message.from << 32) | message.to)
        hasher.combine(message.term)
        hasher.combine(message.logTerm)
        hasher.combine(message.index)
        hasher.combine(message.commit)
        hasher.combine(UInt64(message.entries.count))
        hasher.combine(message.reject ? 1 : 0)
        hasher.combine(message.readID)
    }

    static func describe(_ message: Message) -> String {
        var text = "\(message.kind) \(message.from)->\(message.to) term \(message.term)"
        switch message.kind {
        case .append:
            text += " prev \(message.index)/\(message.logTerm) entries \(message.entries.count) commit \(message.commit)"
        case .appendResponse:
            text += message.reject ? " reject hint \(message.rejectHint)" : " index \(message.index)"
        case .vote, .preVote:
            text += " last \(message.index)/\(message.logTerm)"
        case .voteResponse, .preVoteResponse:
            text += message.reject ? " rejected" : " granted"
        case .heartbeat:
            text += " commit \(message.commit)"
        case .snapshot:
            if let snapshot = message.snapshot { text += " at \(snapshot.metadata.index)/\(snapshot.metadata.term)" }
        default:
            break
        }
        return text
    }
}

/// One member of a Raft group as a pure state machine (Ongaro & Ousterhout,
/// "In Search of an Understandable Consensus Algorithm", and the dissertation
/// "Consensus: Bridging Theory and Practice").
///
/// It reads no clock, opens no socket or file and starts no thread. The
/// caller (a shell: the manager, the simulator, the benchmark) feeds it
/// inputs — ``tick()`` at a fixed period, ``step(_:)`` for every message that
/// arrives, and the requests ``propose(_:)``, ``proposeConfChange(_:)``,
/// ``readIndex(context:)`` and ``transferLeadership(to:)`` — and then, while
/// ``hasReady`` is true, takes a ``Ready``, carries it out in the order its
/// documentation gives, and calls ``advance(_:)``.
public struct RaftNode: Sendable {
    public let options: RaftOptions
    public var id: NodeID { options.id }

    public private(set) var term: UInt64 = 0
    private var vote: NodeID = 0
    /// The leader this member follows (itself when leader; 0 if unknown).
    public private(set) var leader: NodeID = 0
    public private(set) var role: Role = .follower
    /// The configuration in force: the newest in the log (§4.1).
    public private(set) var configuration: Configuration = .empty

    var log = RaftLog()
    private var progress: [NodeID: Progress] = [:]
    private var votesGranted: [NodeID] = []
    private var votesRejected: [NodeID] = []

    private var messagesBeforePersist: [Message] = []
    private var messages: [Message] = []
    private var readStates: [ReadState] = []

    private var electionElapsed = 0
    private var heartbeatElapsed = 0
    private var randomizedElectionTimeout = 0
    private var generator: SeededGenerator

    private var leadTransferee: NodeID = 0
    /// Index of the newest configuration entry a leader proposed; no new
    /// change is accepted before it commits.
    private var pendingConfigurationIndex: UInt64 = 0
    private var uncommittedBytes = 0
    /// Replication to followers is due (coalesced until the next Ready).
    private var broadcastDue = false

    private struct PendingRead {
        var id: UInt64
        var index: UInt64
        var context: [UInt8]
        var requester: NodeID
        var acknowledged: [NodeID]
    }
    private var pendingReads: [PendingRead] = []
    /// Reads received before the leader committed an entry of its term (§6.4 step 1).
    private var readsAwaitingCommit: [(context: [UInt8], requester: NodeID)] = []
    private var nextReadID: UInt64 = 1

    private var persistedHardState = HardState.empty
    private var reportedSoftState = SoftState(role: .follower, leader: 0, term: 0)
    private var readyOutstanding = false

    /// A follower's log matches its leader's through this index: the last
    /// entry an append from the current leader wrote or confirmed (0 after
    /// any change of term or leader). What lets a follower take a commit
    /// index from a read answer (see ``stepFollower(_:)``).
    private var leaderMatchedIndex: UInt64 = 0

    /// Messages dropped because they were malformed, misaddressed or stale.
    public private(set) var droppedMessageCount = 0

    // MARK: Creation

    /// A founding member of a new group. Every founding member must be
    /// bootstrapped with the same voters: their first Ready persists the same
    /// configuration entry (index 1, term 1), already committed.
    public static func bootstrap(options: RaftOptions, voters: [NodeID]) -> RaftNode {
        precondition(voters.contains(options.id), "a founding member must be one of the voters")
        var node = RaftNode(fresh: options)
        let configuration = Configuration(voters: voters)
        node.log.appendLocal([Entry(term: 1, index: 1, kind: .configuration, data: configuration.encoded())])
        node.log.commit(to: 1)
        node.term = 1
        node.configurationChanged()
        return node
    }

    /// Restarts a member from what it persisted. A member joining an existing
    /// group starts from ``PersistentState/empty``: it has no configuration,
    /// so it never campaigns, and waits for the leader to send it the log.
    ///
    /// - Throws: ``RaftError/corruptState(_:)`` for state no correct member writes.
    public init(options: RaftOptions, restoring state: PersistentState) throws(RaftError) {
        self.init(fresh: options)
        log = try RaftLog(restoring: state)
        term = state.hardState.term
        vote = state.hardState.vote
        persistedHardState = state.hardState
        reportedSoftState = SoftState(role: .follower, leader: 0, term: term)
        configurationChanged()
    }

    private init(fresh options: RaftOptions) {
        self.options = options
        generator = SeededGenerator(seed: options.seed ^ (options.id &* 0x9E37_79B9_7F4A_7C15))
        resetRandomizedElectionTimeout()
    }

    // MARK: Observation

    public var commitIndex: UInt64 { log.committed }
    public var appliedIndex: UInt64 { log.applied }
    public var firstIndex: UInt64 { log.firstIndex }
    public var lastIndex: UInt64 { log.lastIndex }
    public var lastTerm: UInt64 { log.lastTerm }
    public func entry(at index: UInt64) -> Entry? { log.entry(at: index) }
    public func term(at index: UInt64) -> UInt64? { log.term(at: index) }
    public var snapshotMetadata: SnapshotMetadata? { log.snapshot?.metadata }
    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    public var softState: SoftState { SoftState(role: role, leader: leader, term: term) }
    /// The highest index a leader knows `member` holds (nil if not leader or unknown member).
    public func matchIndex(of member: NodeID) -> UInt64? { role == .leader ? progress[member]?.match : nil }

    /// Whether ``ready()`` has anything for the caller.
    public var hasReady: Bool {
        if broadcastDue && role == .leader { return true }
        if !messages.isEmpty || !messagesBeforePersist.isEmpty || !readStates.isEmpty { return true }
        if log.pendingSnapshot != nil || log.persistingIndex < log.lastIndex || log.hasNextCommittedEntries { return true }
        if hardStateToPersist != persistedHardState { return true }
        return softState != reportedSoftState
    }

    // MARK: Inputs

    /// Advances logical time by one tick. The caller ticks every member at the
    /// same fixed period; timeouts are counted in ticks.
    public mutating func tick() {
        if role == .leader {
            tickLeader()
        } else {
            electionElapsed += 1
            if isPromotable && electionElapsed >= randomizedElectionTimeout {
                electionElapsed = 0
                campaign(preVote: options.preVote, transfer: false)
            }
        }
    }

    /// Appends `data` to the log as a new entry. Only the leader accepts
    /// proposals; elsewhere they fail at once so the client can retry against
    /// the leader. The entry is committed when a later Ready hands it out in
    /// `committedEntries` at the returned index (and with this term: a
    /// different term there means the proposal was lost to a leader change).
    @discardableResult
    public mutating func propose(_ data: [UInt8]) throws(RaftError) -> UInt64 {
        try checkAcceptingProposals()
        if options.maxUncommittedBytes > 0 && uncommittedBytes > 0 && uncommittedBytes + data.count > options.maxUncommittedBytes {
            throw .proposalDropped(reason: "\(uncommittedBytes) bytes are waiting to commit")
        }
        return appendLocal(kind: .normal, data: data)
    }

    /// Proposes a single-server membership change (see ``Configuration``). It
    /// takes effect on each member when appended; the next change is accepted
    /// once this one commits.
    @discardableResult
    public mutating func proposeConfChange(_ change: ConfigurationChange) throws(RaftError) -> UInt64 {
        try checkAcceptingProposals()
        if pendingConfigurationIndex > log.committed { throw .configurationChangeInProgress }
        let next = try configuration.applying(change)
        let index = appendLocal(kind: .configuration, data: next.encoded())
        pendingConfigurationIndex = index
        return index
    }

    /// Requests a linearizable read (dissertation §6.4, ReadIndex). When this
    /// member's leadership is confirmed by a quorum, a later Ready carries a
    /// ``ReadState`` with `context`; serve the read once `appliedIndex` reaches
    /// its index. A follower forwards the request to its leader. No answer
    /// arrives if leadership is lost meanwhile: the caller retries on a timeout.
    public mutating func readIndex(context: [UInt8]) throws(RaftError) {
        switch role {
        case .leader:
            if leadTransferee != 0 { throw .leadershipTransferInProgress(to: leadTransferee) }
            handleReadRequest(context: context, requester: id)
        case .follower where leader != 0:
            messages.append(Message(kind: .readIndex, from: id, to: leader, term: term, context: context))
        default:
            throw .noLeader
        }
    }

    /// Hands leadership to `target` (dissertation §3.10): the leader stops
    /// accepting proposals, brings the target up to date and tells it to
    /// campaign at once. Abandoned after an election timeout.
    public mutating func transferLeadership(to target: NodeID) throws(RaftError) {
        guard role == .leader else { throw leader == 0 ? .noLeader : .notLeader(leader: leader) }
        guard target != id, configuration.isVoter(target), progress[target] != nil else { throw .invalidTransferTarget(target) }
        if leadTransferee == target { return }
        leadTransferee = target
        electionElapsed = 0
        if progress[target]?.match == log.lastIndex {
            sendTimeoutNow(to: target)
        } else {
            sendAppend(to: target)
        }
    }

    /// Replaces the log up to `index` (at most ``appliedIndex``) with the
    /// application's snapshot `data` of its state at that index. The caller
    /// then records the returned snapshot with ``RaftStorage/compact(to:)``.
    public mutating func compact(through index: UInt64, data: [UInt8]) throws(RaftError) -> Snapshot {
        guard index <= log.applied else { throw .indexOutOfRange(index: index, lastIndex: log.applied) }
        guard index > log.snapshotIndex else { throw .compacted(index: index, firstIndex: log.firstIndex) }
        return log.compact(through: index, data: data)
    }

    /// Handles a message from another member. Malformed, misaddressed and
    /// stale messages are dropped as Raft requires; none can crash the member
    /// or make it contradict what it persisted.
    public mutating func step(_ message: Message) {
        guard message.to == id, message.from != id, message.from != 0, isWellFormed(message) else {
            droppedMessageCount += 1
            return
        }
        if message.term > term {
            if message.kind == .vote || message.kind == .preVote {
                // Leader lease (§4.2.3): while a leader is heard from, a
                // disruptive candidate (a removed or partitioned member) is ignored.
                let leaderAlive = options.checkQuorum && leader != 0 && electionElapsed < options.electionTimeoutTicks
                if leaderAlive && message.context != transferCampaignContext { return }
            }
            switch message.kind {
            case .preVote:
                break
            case .preVoteResponse where !message.reject:
                break
            case .append, .heartbeat, .snapshot:
                becomeFollower(term: message.term, leader: message.from)
            default:
                becomeFollower(term: message.term, leader: 0)
            }
        } else if message.term < term {
            if message.kind == .append || message.kind == .heartbeat {
                // Tell a stale leader about the newer term so it steps down;
                // without this, pre-vote and check-quorum can leave it stranded.
                messages.append(Message(kind: .appendResponse, from: id, to: message.from, term: term))
            } else if message.kind == .preVote {
                messages.append(Message(kind: .preVoteResponse, from: id, to: message.from, term: term, reject: true))
            }
            return
        }

        switch message.kind {
        case .preVote, .vote:
            handleVoteRequest(message)
            return
        default:
            break
        }
        switch role {
        case .leader: stepLeader(message)
        case .candidate, .preCandidate: stepCandidate(message)
        case .follower: stepFollower(message)
        }
    }

    // MARK: Output

    /// What the caller must do next; see ``Ready`` for the order. Call
    /// ``advance(_:entriesDurable:)`` with it before calling `ready()` again.
    public mutating func ready() -> Ready {
        precondition(!readyOutstanding, "ready() called again before advance()")
        flushBroadcast()
        var ready = Ready()
        let hardState = hardStateToPersist
        if hardState != persistedHardState { ready.hardState = hardState }
        ready.entries = log.unstableEntries
        if let last = ready.entries.last { log.markPersisting(through: last.index) }
        ready.snapshot = log.pendingSnapshot
        let votingStateChanged = hardState.term != persistedHardState.term || hardState.vote != persistedHardState.vote
        ready.mustSync = !ready.entries.isEmpty || ready.snapshot != nil || votingStateChanged
        ready.messagesBeforePersist = messagesBeforePersist
        ready.messages = messages
        // See ``Ready/canPersistAfterAdvance`` for why these conditions suffice.
        ready.canPersistAfterAdvance = role == .leader && messages.isEmpty && ready.snapshot == nil && !votingStateChanged
        messagesBeforePersist.removeAll()
        messages.removeAll()
        ready.committedEntries = log.nextCommittedEntries(maxBytes: options.maxApplyBatchBytes)
        if let last = ready.committedEntries.last { log.markApplying(through: last.index) }
        ready.readStates = readStates
        readStates.removeAll()
        if softState != reportedSoftState {
            ready.softState = softState
            reportedSoftState = softState
        }
        readyOutstanding = true
        return ready
    }

    /// Confirms the caller carried out `ready`: sent its messages, applied
    /// its committed entries and — when `entriesDurable` is true, the
    /// default — persisted it.
    ///
    /// `entriesDurable: false` is only allowed for a Ready whose
    /// ``Ready/canPersistAfterAdvance`` is true: its write may still be
    /// running (a leader persisting in parallel with its followers,
    /// dissertation §10.2.1). The caller then calls
    /// ``persisted(through:term:)`` once the write is durable, and keeps its
    /// writes in order: every later write lands after this one, and a Ready
    /// whose write must be durable before its `messages` leave waits for
    /// every earlier write too.
    public mutating func advance(_ ready: Ready, entriesDurable: Bool = true) {
        precondition(readyOutstanding, "advance() without a ready()")
        precondition(entriesDurable || ready.canPersistAfterAdvance, "advance(entriesDurable: false) of a Ready that must persist before it advances")
        readyOutstanding = false
        if let hardState = ready.hardState { persistedHardState = hardState }
        if let snapshot = ready.snapshot { log.snapshotApplied(snapshot) }
        if let last = ready.committedEntries.last { log.markApplied(through: last.index) }
        if let last = ready.entries.last {
            if entriesDurable {
                persisted(through: last.index, term: last.term)
            } else if options.has(.leaderCountsUnpersisted), role == .leader, var own = progress[id] {
                _ = own.maybeUpdate(last.index)
                progress[id] = own
                maybeCommit()
            }
        } else if entriesDurable {
            countOwnDurableEntries()
        }
    }

    /// Reports that the entries a Ready handed out through `index` (whose
    /// last entry had `term`) are durable. After ``advance(_:entriesDurable:)``
    /// with `entriesDurable: false`, the caller calls this when the write
    /// completes, in write order; it may do so at any time, also between
    /// ``ready()`` and ``advance(_:entriesDurable:)``. Ignored when the log
    /// changed at `index` since (a newer leader's entries replaced it).
    public mutating func persisted(through index: UInt64, term: UInt64) {
        log.markStable(through: index, term: term)
        countOwnDurableEntries()
    }

    /// The leader counts itself toward a commit only for what it persisted
    /// (§10.2.1): a majority of followers' durable acknowledgements can
    /// commit without the leader's own write.
    private mutating func countOwnDurableEntries() {
        guard role == .leader, var own = progress[id] else { return }
        _ = own.maybeUpdate(log.stableIndex)
        progress[id] = own
        maybeCommit()
    }

    // MARK: Roles

    private var isPromotable: Bool {
        configuration.isVoter(id) && log.pendingSnapshot == nil
    }

    private var hardStateToPersist: HardState {
        var state = HardState(term: term, vote: vote, commit: log.committed)
        if options.has(.voteNotPersisted) {
            state.vote = persistedHardState.term == term ? persistedHardState.vote : 0
        }
        return state
    }

    private mutating func resetRandomizedElectionTimeout() {
        let timeout = max(options.electionTimeoutTicks, 1)
        randomizedElectionTimeout = timeout + Int(generator.next() % UInt64(timeout))
    }

    private mutating func reset(term newTerm: UInt64) {
        if newTerm != term {
            term = newTerm
            vote = 0
        }
        leader = 0
        leaderMatchedIndex = 0
        electionElapsed = 0
        heartbeatElapsed = 0
        resetRandomizedElectionTimeout()
        leadTransferee = 0
        votesGranted.removeAll()
        votesRejected.removeAll()
        pendingReads.removeAll()
        readsAwaitingCommit.removeAll()
        broadcastDue = false
        progress.removeAll()
    }

    private mutating func becomeFollower(term newTerm: UInt64, leader newLeader: NodeID) {
        reset(term: newTerm)
        role = .follower
        leader = newLeader
    }

    private mutating func becomePreCandidate() {
        precondition(role != .leader, "a leader cannot become a pre-candidate")
        // Pre-vote changes neither term nor vote (§9.6).
        votesGranted.removeAll()
        votesRejected.removeAll()
        leader = 0
        role = .preCandidate
    }

    private mutating func becomeCandidate() {
        precondition(role != .leader, "a leader cannot become a candidate")
        reset(term: term + 1)
        vote = id
        role = .candidate
    }

    private mutating func becomeLeader() {
        precondition(role == .candidate, "only a candidate can become leader (role: \(role))")
        reset(term: term)
        role = .leader
        leader = id
        for member in configuration.members {
            var memberProgress = Progress(next: log.lastIndex + 1, maxInflightMessages: options.maxInflightMessages)
            memberProgress.recentActive = true
            if member == id { memberProgress.match = log.stableIndex }
            progress[member] = memberProgress
        }
        if progress[id] == nil {
            var own = Progress(next: log.lastIndex + 1, maxInflightMessages: options.maxInflightMessages)
            own.match = log.stableIndex
            progress[id] = own
        }
        // The no-op of §8 commits this term's first entry, which also
        // releases reads and configuration changes.
        uncommittedBytes = 0
        let noOpIndex = appendLocal(kind: .normal, data: [])
        pendingConfigurationIndex = noOpIndex
    }

    /// Starts an election: a pre-vote round first when enabled, unless a
    /// leadership transfer asked for an immediate election.
    private mutating func campaign(preVote: Bool, transfer: Bool) {
        guard isPromotable else { return }
        let kind: Message.Kind
        let campaignTerm: UInt64
        if preVote {
            becomePreCandidate()
            kind = .preVote
            campaignTerm = term + 1
        } else {
            becomeCandidate()
            kind = .vote
            campaignTerm = term
        }
        votesGranted = [id]
        if configuration.hasQuorum(votesGranted) {
            if preVote { campaign(preVote: false, transfer: transfer) } else { becomeLeader() }
            return
        }
        for voter in configuration.voters where voter != id {
            messages.append(Message(
                kind: kind, from: id, to: voter, term: campaignTerm,
                logTerm: log.lastTerm, index: log.lastIndex,
                context: transfer ? transferCampaignContext : []
            ))
        }
    }

    private mutating func handleVoteRequest(_ message: Message) {
        let isPreVote = message.kind == .preVote
        let responseKind: Message.Kind = isPreVote ? .preVoteResponse : .voteResponse
        let canVote = vote == message.from
            || (vote == 0 && leader == 0)
            || (isPreVote && message.term > term)
        if canVote && log.isUpToDate(lastIndex: message.index, lastTerm: message.logTerm) {
            // A pre-vote answer carries the term it was asked about so the
            // pre-candidate can tell it from stale answers.
            messages.append(Message(kind: responseKind, from: id, to: message.from, term: message.term))
            if !isPreVote {
                electionElapsed = 0
                vote = message.from
            }
        } else {
            messages.append(Message(kind: responseKind, from: id, to: message.from, term: term, reject: true))
        }
    }

    private mutating func stepCandidate(_ message: Message) {
        switch message.kind {
        case .append, .heartbeat, .snapshot:
            becomeFollower(term: message.term, leader: message.from)
            stepFollower(message)
        case .preVoteResponse where role == .preCandidate, .voteResponse where role == .candidate:
            let expectedTerm = role == .preCandidate ? term + 1 : term
            if message.term != expectedTerm && !message.reject { return }
            guard configuration.isVoter(message.from) else { return }
            if votesGranted.contains(message.from) || votesRejected.contains(message.from) { return }
            if message.reject { votesRejected.append(message.from) } else { votesGranted.append(message.from) }
            if configuration.hasQuorum(votesGranted) {
                if role == .preCandidate { campaign(preVote: false, transfer: false) } else { becomeLeader() }
            } else if configuration.voters.count - votesRejected.count < configuration.quorum {
                becomeFollower(term: term, leader: 0)
            }
        default:
            break
        }
    }

    private mutating func stepFollower(_ message: Message) {
        switch message.kind {
        case .append:
            electionElapsed = 0
            leader = message.from
            handleAppend(message)
        case .heartbeat:
            electionElapsed = 0
            leader = message.from
            log.commit(to: message.commit)
            messages.append(Message(kind: .heartbeatResponse, from: id, to: message.from, term: term, readID: message.readID))
        case .snapshot:
            electionElapsed = 0
            leader = message.from
            handleSnapshot(message)
        case .timeoutNow:
            if isPromotable { campaign(preVote: false, transfer: true) }
        case .readIndexResponse:
            // The read's index was the leader's commit index. Commits are no
            // longer sent on their own, so this follower may not know it
            // yet: take it where our log is known to match the leader's, or
            // the read would wait for the next heartbeat.
            if message.from == leader { log.commit(to: min(message.index, leaderMatchedIndex)) }
            readStates.append(ReadState(index: message.index, context: message.context))
        default:
            break
        }
    }

    private mutating func stepLeader(_ message: Message) {
        guard progress[message.from] != nil else {
            droppedMessageCount += 1
            return
        }
        progress[message.from]!.recentActive = true
        switch message.kind {
        case .appendResponse:
            handleAppendResponse(message)
        case .heartbeatResponse:
            progress[message.from]!.probeSent = false
            if progress[message.from]!.state == .replicate && progress[message.from]!.inflights.isFull {
                // Appends in flight were lost (a partition): free one slot so the
                // next append reaches the follower, whose answer resets the window.
                progress[message.from]!.inflights.freeFirst()
            }
            if progress[message.from]!.match < log.lastIndex { sendAppend(to: message.from) }
            if message.readID != 0 { acknowledgeReads(through: message.readID, from: message.from) }
        case .readIndex:
            handleReadRequest(context: message.context, requester: message.from)
        default:
            break
        }
    }

    private mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= options.electionTimeoutTicks {
            electionElapsed = 0
            if options.checkQuorum {
                // §6.2: a leader that has not heard from a majority within an
                // election timeout steps down instead of serving stale reads.
                let active = configuration.voters.filter { $0 == id || progress[$0]?.recentActive == true }
                if !configuration.hasQuorum(active) {
                    becomeFollower(term: term, leader: 0)
                    return
                }
                for member in configuration.members where member != id { progress[member]?.recentActive = false }
            }
            leadTransferee = 0
        }
        for member in configuration.members where member != id {
            guard var memberProgress = progress[member], case .snapshot = memberProgress.state else { continue }
            memberProgress.snapshotTicks += 1
            if memberProgress.snapshotTicks > options.electionTimeoutTicks { memberProgress.becomeProbe() }
            progress[member] = memberProgress
        }
        if heartbeatElapsed >= options.heartbeatIntervalTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat()
        }
    }

    // MARK: Replication

    private mutating func checkAcceptingProposals() throws(RaftError) {
        guard role == .leader else { throw leader == 0 ? .noLeader : .notLeader(leader: leader) }
        if leadTransferee != 0 { throw .leadershipTransferInProgress(to: leadTransferee) }
    }

    private mutating func appendLocal(kind: Entry.Kind, data: [UInt8]) -> UInt64 {
        let index = log.lastIndex + 1
        log.appendLocal([Entry(term: term, index: index, kind: kind, data: data)])
        uncommittedBytes += data.count
        if kind == .configuration { configurationChanged() }
        broadcastDue = true
        return index
    }

    private mutating func flushBroadcast() {
        guard broadcastDue else { return }
        broadcastDue = false
        guard role == .leader else { return }
        for member in configuration.members where member != id {
            sendAppend(to: member)
            while sendAppend(to: member, sendIfEmpty: false) {}
        }
    }

    /// Sends `member` what it lacks (entries, or the snapshot if they were
    /// compacted). Returns whether a message went out.
    @discardableResult
    private mutating func sendAppend(to member: NodeID, sendIfEmpty: Bool = true) -> Bool {
        guard var memberProgress = progress[member], !memberProgress.isPaused else { return false }
        if memberProgress.next > log.lastIndex + 1 { memberProgress.next = log.lastIndex + 1 }
        let previousIndex = memberProgress.next - 1
        guard let previousTerm = log.term(at: previousIndex),
              let entries = log.entries(from: memberProgress.next, maxBytes: options.maxBatchBytes) else {
            guard let snapshot = log.snapshot else { return false }
            messagesBeforePersist.append(Message(kind: .snapshot, from: id, to: member, term: term, snapshot: snapshot))
            memberProgress.becomeSnapshot(index: snapshot.metadata.index)
            progress[member] = memberProgress
            return true
        }
        if entries.isEmpty && !sendIfEmpty { return false }
        messagesBeforePersist.append(Message(
            kind: .append, from: id, to: member, term: term,
            logTerm: previousTerm, index: previousIndex, entries: entries, commit: log.committed
        ))
        memberProgress.sentEntries(lastIndex: entries.last?.index ?? previousIndex, count: entries.count)
        progress[member] = memberProgress
        return true
    }

    private mutating func broadcastHeartbeat() {
        let readID = pendingReads.last?.id ?? 0
        for member in configuration.members where member != id {
            let commit = min(progress[member]?.match ?? 0, log.committed)
            messagesBeforePersist.append(Message(kind: .heartbeat, from: id, to: member, term: term, commit: commit, readID: readID))
        }
    }

    private mutating func sendTimeoutNow(to member: NodeID) {
        messagesBeforePersist.append(Message(kind: .timeoutNow, from: id, to: member, term: term))
    }

    private mutating func handleAppendResponse(_ message: Message) {
        let member = message.from
        guard var memberProgress = progress[member] else { return }
        if message.reject {
            var hint = message.rejectHint
            if message.logTerm > 0 { hint = log.findConflictByTerm(index: message.rejectHint, term: message.logTerm) }
            if memberProgress.maybeDecrease(rejected: message.index, hint: hint) {
                if memberProgress.state == .replicate { memberProgress.becomeProbe() }
                progress[member] = memberProgress
                sendAppend(to: member)
            }
            return
        }
        guard message.index <= log.lastIndex else { droppedMessageCount += 1; return }
        let wasPaused = memberProgress.isPaused
        guard memberProgress.maybeUpdate(message.index) else {
            // Nothing new, but `next` may have moved past a stale probe position.
            progress[member] = memberProgress
            return
        }
        switch memberProgress.state {
        case .probe:
            memberProgress.becomeReplicate()
        case .snapshot(let index) where memberProgress.match >= index:
            memberProgress.becomeProbe()
            memberProgress.becomeReplicate()
        case .replicate:
            memberProgress.inflights.free(through: message.index)
        case .snapshot:
            break
        }
        progress[member] = memberProgress
        // A new commit index is not sent on its own (that would be an
        // append and an acknowledgement per follower per commit, for
        // nothing): the next append or heartbeat carries it.
        maybeCommit()
        if wasPaused { sendAppend(to: member) }
        while sendAppend(to: member, sendIfEmpty: false) {}
        if member == leadTransferee && progress[member]?.match == log.lastIndex {
            sendTimeoutNow(to: member)
        }
    }

    /// Advances the commit index to the highest index a majority of voters
    /// holds — but only if that entry is from the current term (§5.4.2:
    /// counting replicas never commits an entry of a previous term).
    ///
    /// Followers learn the new index from the next append (a new proposal)
    /// or heartbeat (within ``RaftOptions/heartbeatIntervalTicks``), not
    /// from a message of its own; a follower that serves a read learns it
    /// with the read (see ``stepFollower(_:)``).
    @discardableResult
    private mutating func maybeCommit() -> Bool {
        var matches = configuration.voters.map { progress[$0]?.match ?? 0 }
        guard !matches.isEmpty else { return false }
        matches.sort(by: >)
        let candidate = matches[configuration.quorum - 1]
        guard candidate > log.committed, let candidateTerm = log.term(at: candidate) else { return false }
        guard candidateTerm == term || options.has(.commitPreviousTerm) else { return false }
        let hadCommittedInTerm = log.term(at: log.committed) == term
        log.commit(to: candidate)
        uncommittedBytes = 0
        var index = log.committed + 1
        while index <= log.lastIndex {
            uncommittedBytes += log.entry(at: index)?.data.count ?? 0
            index += 1
        }
        if !hadCommittedInTerm && log.term(at: log.committed) == term {
            let waiting = readsAwaitingCommit
            readsAwaitingCommit.removeAll()
            for read in waiting { handleReadRequest(context: read.context, requester: read.requester) }
        }
        if !configuration.isVoter(id) && log.committed >= log.lastConfigurationIndex {
            // Removed from the voters and the removal is committed: hand over
            // to the most up-to-date voter and step down (§4.2.2).
            let successor = configuration.voters.max { (progress[$0]?.match ?? 0, $1) < (progress[$1]?.match ?? 0, $0) }
            if let successor { sendTimeoutNow(to: successor) }
            let pending = messagesBeforePersist
            becomeFollower(term: term, leader: 0)
            messagesBeforePersist = pending
            return false
        }
        return true
    }

    private mutating func handleAppend(_ message: Message) {
        if message.index < log.committed {
            sendAcknowledgement(to: message.from, index: log.committed)
            return
        }
        if let lastNewIndex = log.maybeAppend(
            previousIndex: message.index, previousTerm: message.logTerm,
            leaderCommit: message.commit, entries: message.entries
        ) {
            leaderMatchedIndex = max(leaderMatchedIndex, lastNewIndex)
            configurationChanged()
            sendAcknowledgement(to: message.from, index: lastNewIndex)
            return
        }
        if log.matchTerm(message.index, message.logTerm) {
            // The log matched but the entries would overwrite committed ones:
            // no correct leader sends that.
            droppedMessageCount += 1
            return
        }
        let hint = log.findConflictByTerm(index: min(message.index, log.lastIndex), term: message.logTerm)
        messages.append(Message(
            kind: .appendResponse, from: id, to: message.from, term: term,
            logTerm: log.term(at: hint) ?? 0, index: message.index, reject: true, rejectHint: hint
        ))
    }

    /// An acknowledgement promises the entries are durable, so it goes out
    /// after the Ready's persist step.
    private mutating func sendAcknowledgement(to member: NodeID, index: UInt64) {
        let response = Message(kind: .appendResponse, from: id, to: member, term: term, index: index)
        if options.has(.applyBeforePersist) {
            messagesBeforePersist.append(response)
        } else {
            messages.append(response)
        }
    }

    private mutating func handleSnapshot(_ message: Message) {
        guard let snapshot = message.snapshot else { return }
        let metadata = snapshot.metadata
        if metadata.index <= log.committed {
            sendAcknowledgement(to: message.from, index: log.committed)
            return
        }
        if log.matchTerm(metadata.index, metadata.term) {
            // We already hold the snapshot's entries; just learn they are committed.
            log.commit(to: metadata.index)
            sendAcknowledgement(to: message.from, index: log.committed)
            return
        }
        log.restore(snapshot)
        configurationChanged()
        sendAcknowledgement(to: message.from, index: metadata.index)
    }

    /// Keeps the cached configuration and the leader's progress table in step
    /// with the newest configuration in the log.
    private mutating func configurationChanged() {
        let next = log.configuration
        guard next != configuration else { return }
        configuration = next
        guard role == .leader else { return }
        for member in next.members where progress[member] == nil {
            var memberProgress = Progress(next: log.lastIndex + 1, maxInflightMessages: options.maxInflightMessages)
            memberProgress.recentActive = true
            progress[member] = memberProgress
        }
        for member in progress.keys.sorted() where member != id && !next.contains(member) {
            progress.removeValue(forKey: member)
        }
        if leadTransferee != 0 && !next.isVoter(leadTransferee) { leadTransferee = 0 }
        if maybeCommit() { broadcastDue = true }
    }

    // MARK: Linearizable reads (§6.4)

    private mutating func handleReadRequest(context: [UInt8], requester: NodeID) {
        if configuration.voters == [id] {
            deliverRead(index: log.committed, context: context, requester: requester)
            return
        }
        guard log.term(at: log.committed) == term else {
            readsAwaitingCommit.append((context, requester))
            return
        }
        let readID = nextReadID
        nextReadID += 1
        pendingReads.append(PendingRead(id: readID, index: log.committed, context: context, requester: requester, acknowledged: [id]))
        broadcastHeartbeat()
    }

    private mutating func acknowledgeReads(through readID: UInt64, from member: NodeID) {
        guard configuration.isVoter(member) else { return }
        for position in pendingReads.indices where pendingReads[position].id <= readID {
            if !pendingReads[position].acknowledged.contains(member) { pendingReads[position].acknowledged.append(member) }
        }
        while let first = pendingReads.first, configuration.hasQuorum(first.acknowledged) {
            pendingReads.removeFirst()
            deliverRead(index: first.index, context: first.context, requester: first.requester)
        }
    }

    private mutating func deliverRead(index: UInt64, context: [UInt8], requester: NodeID) {
        if requester == id {
            readStates.append(ReadState(index: index, context: context))
        } else {
            messagesBeforePersist.append(Message(kind: .readIndexResponse, from: id, to: requester, term: term, index: index, context: context))
        }
    }

    // MARK: Validation

    /// Structural checks on untrusted input; semantic ones happen where the
    /// message is handled.
    private func isWellFormed(_ message: Message) -> Bool {
        if message.kind == .append {
            var expectedIndex = message.index
            var previousTerm = message.logTerm
            for entry in message.entries {
                guard expectedIndex < UInt64.max else { return false }
                expectedIndex += 1
                guard entry.index == expectedIndex, entry.term >= previousTerm, entry.term <= message.term else { return false }
                if entry.kind == .configuration && Configuration(encoded: entry.data) == nil { return false }
                previousTerm = entry.term
            }
        }
        if message.kind == .snapshot {
            guard let snapshot = message.snapshot, snapshot.metadata.index > 0,
                  snapshot.metadata.term <= message.term, !snapshot.metadata.configuration.voters.isEmpty else { return false }
        }
        return true
    }
}

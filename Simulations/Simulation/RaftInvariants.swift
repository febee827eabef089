import Raft

/// Every property the simulator checks, each a named function (STYLE 14),
/// with the history-wide records they need. The simulator calls them after
/// every event (on the members the event touched) and at the end of a run;
/// unit tests can call them too. Each throws an ``InvariantViolation`` named
/// after the function.
public struct RaftInvariants: Sendable {
    /// The leader seen for each term, over the whole run.
    private var leaderOfTerm: [UInt64: NodeID] = [:]

    private struct EntryID: Hashable {
        var index: UInt64
        var term: UInt64
    }
    private struct EntryRecord {
        var digest: UInt64
        var previousTerm: UInt64?
        var member: NodeID
    }
    /// Every (index, term) ever seen in any member's log, with its content
    /// and the term before it. A leader creates at most one entry per index
    /// in its term, so this identifies the entry for the whole run.
    private var entries: [EntryID: EntryRecord] = [:]

    private struct AppliedRecord {
        var term: UInt64
        var digest: UInt64
        var stateDigest: UInt64
        var member: NodeID
    }
    /// What the first member to apply each index applied.
    private var applied: [UInt64: AppliedRecord] = [:]
    private struct CommittedRecord {
        var term: UInt64
        var member: NodeID
        /// No leader of a term above this can have been elected before the
        /// entry was committed: leaders of higher terms must hold it.
        var termBound: UInt64
    }
    /// Every entry known to be committed: covered by some member's commit
    /// index, or applied by some member.
    private var committed: [UInt64: CommittedRecord] = [:]
    /// Per member: the commit index already recorded into `committed`.
    private var committedRecordedThrough: [NodeID: UInt64] = [:]

    /// Per member: the term it was last checked as leader in, and the
    /// highest committed index verified in its log for that term (a leader
    /// never truncates its own log, so each index is checked once per term).
    private var verifiedLeader: [NodeID: (term: UInt64, through: UInt64)] = [:]

    /// Per member: the term it was last seen leading in, and its commit
    /// index then (for ``leaderCommitsOnlyItsOwnTerm(member:node:time:)``).
    private var leaderCommit: [NodeID: (term: UInt64, commit: UInt64)] = [:]

    /// Writes acknowledged to a client, with the index that carried them.
    public private(set) var acknowledgedWrites: [(client: UInt64, sequence: UInt64, index: UInt64)] = []

    public init() {}

    static func entryDigest(_ entry: Entry) -> UInt64 {
        var hasher = TraceHasher()
        hasher.combine(UInt64(entry.kind.rawValue))
        hasher.combine(entry.data)
        return hasher.value
    }

    // MARK: Election safety (Raft §5.2, Figure 3)

    /// At most one leader per term, over the whole history of the run.
    public mutating func electionSafety(member: NodeID, role: Role, term: UInt64, time: UInt64) throws(InvariantViolation) {
        guard role == .leader else { return }
        if let existing = leaderOfTerm[term] {
            if existing != member {
                throw InvariantViolation(
                    invariant: "electionSafety",
                    details: "members \(existing) and \(member) were both leader in term \(term)", time: time)
            }
        } else {
            leaderOfTerm[term] = member
        }
    }

    /// How many distinct terms had a leader.
    public var leaderTermCount: Int { leaderOfTerm.count }

    // MARK: Log matching (Raft §5.3)

    /// If two logs hold an entry with the same index and term, the logs are
    /// identical up to it. Checked by induction: each (index, term) must
    /// always carry the same content and follow the same previous term.
    /// `entries` are consecutive; `previousTerm` is the term of the entry
    /// before the first (nil when unknown, e.g. compacted away).
    public mutating func logMatching(member: NodeID, entries newEntries: [Entry], previousTerm: UInt64?, time: UInt64) throws(InvariantViolation) {
        var previous = previousTerm
        for entry in newEntries {
            let id = EntryID(index: entry.index, term: entry.term)
            let digest = Self.entryDigest(entry)
            if var record = entries[id] {
                if record.digest != digest {
                    throw InvariantViolation(
                        invariant: "logMatching",
                        details: "entry index \(entry.index) term \(entry.term) differs between member \(record.member) and member \(member) (content digests \(record.digest) vs \(digest))",
                        time: time)
                }
                if let known = record.previousTerm, let previous, known != previous {
                    throw InvariantViolation(
                        invariant: "logMatching",
                        details: "entry index \(entry.index) term \(entry.term) follows term \(known) on member \(record.member) but term \(previous) on member \(member): the logs differ before a matching entry",
                        time: time)
                }
                if record.previousTerm == nil, let previous {
                    record.previousTerm = previous
                    entries[id] = record
                }
            } else {
                entries[id] = EntryRecord(digest: digest, previousTerm: previous, member: member)
            }
            previous = entry.term
        }
    }

    /// ``logMatching(member:entries:previousTerm:time:)`` over a member's
    /// whole current log.
    public mutating func logMatching(member: NodeID, node: RaftNode, time: UInt64) throws(InvariantViolation) {
        guard node.lastIndex >= node.firstIndex else { return }
        var log: [Entry] = []
        log.reserveCapacity(Int(node.lastIndex - node.firstIndex + 1))
        for index in node.firstIndex...node.lastIndex {
            guard let entry = node.entry(at: index) else { break }
            log.append(entry)
        }
        try logMatching(member: member, entries: log, previousTerm: node.term(at: node.firstIndex - 1), time: time)
    }

    // MARK: Leader completeness (Raft §5.4)

    /// Records what a member's commit index newly covers as committed, and
    /// checks that no two members ever consider different entries committed
    /// at one index. `termBound` is the highest term any running member holds.
    public mutating func recordCommitted(member: NodeID, node: RaftNode, termBound: UInt64, time: UInt64) throws(InvariantViolation) {
        var through = committedRecordedThrough[member] ?? 0
        // A restarted member may have persisted its commit lazily.
        if node.commitIndex < through { through = node.commitIndex }
        guard node.commitIndex > through else { return }
        var index = max(through + 1, node.firstIndex)
        while index <= node.commitIndex {
            defer { index += 1 }
            guard let term = node.term(at: index) else { break }
            try recordCommitted(index: index, term: term, member: member, termBound: termBound, time: time)
        }
        committedRecordedThrough[member] = node.commitIndex
    }

    private mutating func recordCommitted(index: UInt64, term: UInt64, member: NodeID, termBound: UInt64, time: UInt64) throws(InvariantViolation) {
        if let record = committed[index] {
            if record.term != term {
                throw InvariantViolation(
                    invariant: "leaderCompleteness",
                    details: "member \(member) committed an entry of term \(term) at index \(index), but member \(record.member) had committed one of term \(record.term) there",
                    time: time)
            }
            return
        }
        committed[index] = CommittedRecord(term: term, member: member, termBound: termBound)
    }

    /// Every committed entry is in the log of every leader of a later term.
    /// An entry counts as committed once any member applies it.
    public mutating func leaderCompleteness(member: NodeID, node: RaftNode, time: UInt64) throws(InvariantViolation) {
        guard node.role == .leader else { return }
        var verified = verifiedLeader[member] ?? (term: 0, through: 0)
        if verified.term != node.term { verified = (node.term, 0) }
        var index = verified.through + 1
        while let record = committed[index] {
            if record.termBound < node.term && index >= node.firstIndex {
                let held = node.term(at: index)
                if held != record.term {
                    let what = held.map { "an entry of term \($0)" } ?? "nothing (its log ends at \(node.lastIndex))"
                    throw InvariantViolation(
                        invariant: "leaderCompleteness",
                        details: "member \(member) is leader in term \(node.term) but holds \(what) at index \(index), where member \(record.member) committed an entry of term \(record.term) no later than term \(record.termBound)",
                        time: time)
                }
            }
            verified.through = index
            index += 1
        }
        verifiedLeader[member] = verified
    }

    /// Raft §5.4.2: a leader advances its commit index only to an entry of
    /// its own term (entries of earlier terms commit with it, never by
    /// counting their replicas: Figure 8 shows such an entry can be
    /// overwritten). Leader completeness catches the consequence only when
    /// a run happens to overwrite it; this catches the cause.
    public mutating func leaderCommitsOnlyItsOwnTerm(member: NodeID, node: RaftNode, time: UInt64) throws(InvariantViolation) {
        guard node.role == .leader else {
            leaderCommit[member] = nil
            return
        }
        defer { leaderCommit[member] = (node.term, node.commitIndex) }
        guard let seen = leaderCommit[member], seen.term == node.term, node.commitIndex > seen.commit,
              let committedTerm = node.term(at: node.commitIndex), committedTerm != node.term else { return }
        throw InvariantViolation(
            invariant: "leaderCommitsOnlyItsOwnTerm",
            details: "member \(member), leader in term \(node.term), advanced its commit index from \(seen.commit) to \(node.commitIndex), an entry of term \(committedTerm)",
            time: time)
    }

    // MARK: State machine safety (Raft §5.4.3)

    /// No two members apply different entries at one index, and the
    /// application state after each index is the same everywhere.
    /// `termBound` is the highest term any running member holds now. Returns
    /// true when this is the first application of `entry.index` in the run.
    @discardableResult
    public mutating func stateMachineSafety(member: NodeID, entry: Entry, stateDigest: UInt64, termBound: UInt64, time: UInt64) throws(InvariantViolation) -> Bool {
        let digest = Self.entryDigest(entry)
        if let record = applied[entry.index] {
            if record.term != entry.term || record.digest != digest {
                throw InvariantViolation(
                    invariant: "stateMachineSafety",
                    details: "member \(member) applied index \(entry.index) term \(entry.term) (digest \(digest)) but member \(record.member) applied index \(entry.index) term \(record.term) (digest \(record.digest))",
                    time: time)
            }
            if record.stateDigest != stateDigest {
                throw InvariantViolation(
                    invariant: "stateMachineSafety",
                    details: "after applying index \(entry.index) member \(member) has state digest \(stateDigest) but member \(record.member) had \(record.stateDigest)",
                    time: time)
            }
            return false
        }
        applied[entry.index] = AppliedRecord(term: entry.term, digest: digest, stateDigest: stateDigest, member: member)
        try recordCommitted(index: entry.index, term: entry.term, member: member, termBound: termBound, time: time)
        return true
    }

    /// A restored snapshot must equal the state every member had after
    /// applying its index.
    public func stateMachineSafety(member: NodeID, snapshot metadata: SnapshotMetadata, stateDigest: UInt64, time: UInt64) throws(InvariantViolation) {
        guard let record = applied[metadata.index] else { return }
        if record.term != metadata.term || record.stateDigest != stateDigest {
            throw InvariantViolation(
                invariant: "stateMachineSafety",
                details: "member \(member) restored a snapshot at index \(metadata.index) term \(metadata.term) with state digest \(stateDigest), but member \(record.member) applied term \(record.term) there and had state digest \(record.stateDigest)",
                time: time)
        }
    }

    /// The index of the first application of `index`, if any member applied it.
    public func appliedTerm(at index: UInt64) -> UInt64? { applied[index]?.term }

    // MARK: No acknowledged write lost

    public mutating func recordAcknowledgedWrite(client: UInt64, sequence: UInt64, index: UInt64) {
        acknowledgedWrites.append((client, sequence, index))
    }

    /// Every write acknowledged to a client is in the state of every member
    /// that applied as far as the index that carried it.
    public func noAcknowledgedWriteLost(
        member: NodeID, appliedIndex: UInt64, time: UInt64, hasApplied: (_ client: UInt64, _ sequence: UInt64) -> Bool
    ) throws(InvariantViolation) {
        for write in acknowledgedWrites where write.index <= appliedIndex {
            if !hasApplied(write.client, write.sequence) {
                throw InvariantViolation(
                    invariant: "noAcknowledgedWriteLost",
                    details: "client \(write.client) write \(write.sequence) was acknowledged (applied at index \(write.index)) but member \(member), applied through \(appliedIndex), does not have it",
                    time: time)
            }
        }
    }

    // MARK: Linearizability

    /// The client history is linearizable for a per-key register. Returns
    /// false when the checker's search budget ran out (nothing proven).
    public func linearizableHistory(_ history: [ClientOperation], checker: LinearizabilityChecker = LinearizabilityChecker(), time: UInt64) throws(InvariantViolation) -> Bool {
        switch checker.check(history) {
        case .linearizable:
            return true
        case .unknown:
            return false
        case .notLinearizable(let key, let operations):
            let shown = operations.sorted { ($0.invokeTime, $0.client) < ($1.invokeTime, $1.client) }
            var lines = shown.prefix(60).map { "    \($0)" }
            if shown.count > 60 { lines.append("    ... \(shown.count - 60) more") }
            throw InvariantViolation(
                invariant: "linearizableHistory",
                details: "no linearization of the \(operations.count) operations on key \(key):\n" + lines.joined(separator: "\n"),
                time: time)
        }
    }

    // MARK: Liveness

    /// Once every fault has healed, a proposal commits and every member of
    /// the configuration applies it within `boundMs`.
    public func liveness(healedAt: UInt64, now: UInt64, boundMs: UInt64, committedIndex: UInt64?, lagging: [String], state: String) throws(InvariantViolation) {
        guard now > healedAt + boundMs else { return }
        if committedIndex == nil {
            throw InvariantViolation(
                invariant: "liveness",
                details: "no proposal committed within \(boundMs) ms after all faults healed at t=\(healedAt)ms; members: \(state)",
                time: now)
        }
        if !lagging.isEmpty {
            throw InvariantViolation(
                invariant: "liveness",
                details: "the probe committed at index \(committedIndex!) but within \(boundMs) ms of healing these members did not apply it: \(lagging.joined(separator: ", ")); members: \(state)",
                time: now)
        }
    }
}

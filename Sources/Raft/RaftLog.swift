/// A member's log in memory: the newest snapshot's position, the entries
/// after it, and the indexes that divide them into persisted, committed and
/// applied. The shell persists what ``RaftNode/ready()`` hands out; this type
/// only tracks how far that has happened.
struct RaftLog {
    /// Index and term of the last entry covered by the snapshot (0, 0 if none).
    private(set) var snapshotIndex: UInt64 = 0
    private(set) var snapshotTerm: UInt64 = 0
    /// The newest snapshot with its data, sent to followers that fell behind.
    private(set) var snapshot: Snapshot?
    /// A snapshot received from the leader and not yet handed to the caller.
    private(set) var pendingSnapshot: Snapshot?
    /// Entries snapshotIndex+1 ... lastIndex.
    private(set) var entries: [Entry] = []
    /// Highest index known to be on stable storage.
    private(set) var stableIndex: UInt64 = 0
    /// Highest index handed to the caller to persist (in a Ready), durable
    /// or not yet: at least `stableIndex`. The two differ only while a
    /// leader's write runs after ``RaftNode/advance(_:entriesDurable:)``.
    private(set) var persistingIndex: UInt64 = 0
    private(set) var committed: UInt64 = 0
    /// Highest index handed to the caller to apply (in a Ready not yet advanced, or applied).
    private(set) var applying: UInt64 = 0
    /// Highest index the caller confirmed applied.
    private(set) var applied: UInt64 = 0
    /// Configuration entries in `entries`, ascending, and the one the snapshot holds.
    private(set) var configurationIndexes: [UInt64] = []
    private(set) var snapshotConfiguration: Configuration = .empty

    init() {}

    /// Restores what a member persisted. Throws on state that cannot have
    /// been written by a correct member (corrupt storage).
    init(restoring state: PersistentState) throws(RaftError) {
        if let snapshot = state.snapshot {
            snapshotIndex = snapshot.metadata.index
            snapshotTerm = snapshot.metadata.term
            snapshotConfiguration = snapshot.metadata.configuration
            self.snapshot = snapshot
        }
        var expected = snapshotIndex + 1
        var previousTerm = snapshotTerm
        for entry in state.entries {
            guard entry.index == expected else {
                throw .corruptState("log entry \(entry.index) found where \(expected) was expected")
            }
            guard entry.term >= previousTerm else {
                throw .corruptState("log entry \(entry.index) has term \(entry.term), lower than its predecessor's \(previousTerm)")
            }
            if entry.kind == .configuration {
                guard Configuration(encoded: entry.data) != nil else {
                    throw .corruptState("configuration entry \(entry.index) cannot be decoded")
                }
                configurationIndexes.append(entry.index)
            }
            expected += 1
            previousTerm = entry.term
        }
        entries = state.entries
        stableIndex = lastIndex
        persistingIndex = lastIndex
        guard state.hardState.commit <= lastIndex else {
            throw .corruptState("hard state commit \(state.hardState.commit) is beyond the last log index \(lastIndex)")
        }
        committed = max(state.hardState.commit, snapshotIndex)
        applying = snapshotIndex
        applied = snapshotIndex
    }

    var firstIndex: UInt64 { snapshotIndex + 1 }
    var lastIndex: UInt64 { snapshotIndex + UInt64(entries.count) }
    var lastTerm: UInt64 { entries.last?.term ?? snapshotTerm }

    /// The term of the entry at `index`, or nil when it was compacted or does not exist.
    func term(at index: UInt64) -> UInt64? {
        if index == snapshotIndex { return snapshotTerm }
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)].term
    }

    func entry(at index: UInt64) -> Entry? {
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)]
    }

    func matchTerm(_ index: UInt64, _ term: UInt64) -> Bool {
        self.term(at: index) == term
    }

    /// Raft §5.4.1: a candidate's log is at least as up-to-date as ours.
    func isUpToDate(lastIndex candidateIndex: UInt64, lastTerm candidateTerm: UInt64) -> Bool {
        candidateTerm > lastTerm || (candidateTerm == lastTerm && candidateIndex >= lastIndex)
    }

    /// The configuration in force: the newest one in the log, appended or
    /// not (dissertation §4.1), else the snapshot's.
    var configuration: Configuration {
        if let index = configurationIndexes.last, let entry = entry(at: index),
           let configuration = Configuration(encoded: entry.data) {
            return configuration
        }
        return snapshotConfiguration
    }

    var lastConfigurationIndex: UInt64 { configurationIndexes.last ?? snapshotIndex }

    /// Entries from `low` on, at most `maxBytes` (always at least one entry), or
    /// nil if `low` was compacted.
    func entries(from low: UInt64, maxBytes: Int) -> [Entry]? {
        guard low > snapshotIndex else { return nil }
        guard low <= lastIndex else { return [] }
        var result: [Entry] = []
        var bytes = 0
        var index = Int(low - snapshotIndex - 1)
        while index < entries.count {
            let entry = entries[index]
            bytes += entry.sizeBytes
            if !result.isEmpty && bytes > maxBytes { break }
            result.append(entry)
            index += 1
        }
        return result
    }

    /// The largest index ≤ `index` whose term is ≤ `term`: where the leader's
    /// and a follower's logs can still agree (fast backtracking, §5.3's
    /// optimisation as etcd implements it).
    func findConflictByTerm(index: UInt64, term: UInt64) -> UInt64 {
        var candidate = min(index, lastIndex)
        while candidate > snapshotIndex {
            guard let candidateTerm = self.term(at: candidate), candidateTerm > term else { break }
            candidate -= 1
        }
        return candidate
    }

    /// Appends entries a leader produced locally.
    mutating func appendLocal(_ newEntries: [Entry]) {
        for entry in newEntries {
            precondition(entry.index == lastIndex + 1, "local append at \(entry.index) after \(lastIndex)")
            entries.append(entry)
            if entry.kind == .configuration { configurationIndexes.append(entry.index) }
        }
    }

    /// AppendEntries receiver steps 2-5 (Raft Figure 2). Returns the index of
    /// the last new entry when the log matched at `previousIndex`, nil otherwise.
    /// Conflicts with committed entries are refused (nil) rather than applied.
    mutating func maybeAppend(previousIndex: UInt64, previousTerm: UInt64, leaderCommit: UInt64, entries newEntries: [Entry]) -> UInt64? {
        guard matchTerm(previousIndex, previousTerm) else { return nil }
        let lastNewIndex = previousIndex + UInt64(newEntries.count)
        // Find the first entry that is new or differs from ours.
        var firstNew = newEntries.count
        for (offset, entry) in newEntries.enumerated() where entry.index > snapshotIndex {
            guard let existing = term(at: entry.index), existing == entry.term else {
                firstNew = offset
                break
            }
        }
        if firstNew < newEntries.count {
            let conflictIndex = newEntries[firstNew].index
            if conflictIndex <= committed { return nil }
            truncate(from: conflictIndex)
            appendLocal(Array(newEntries[firstNew...]))
        }
        commit(to: min(leaderCommit, lastNewIndex))
        return lastNewIndex
    }

    private mutating func truncate(from index: UInt64) {
        precondition(index > committed, "truncating committed entry \(index) (commit \(committed))")
        let keep = Int(index - snapshotIndex - 1)
        if keep < entries.count { entries.removeSubrange(keep...) }
        while let last = configurationIndexes.last, last >= index { configurationIndexes.removeLast() }
        stableIndex = min(stableIndex, index - 1)
        persistingIndex = min(persistingIndex, index - 1)
    }

    mutating func commit(to index: UInt64) {
        let target = min(index, lastIndex)
        if target > committed { committed = target }
    }

    /// Entries not yet handed to the caller to persist.
    var unstableEntries: [Entry] {
        guard persistingIndex < lastIndex else { return [] }
        let start = Int(max(persistingIndex, snapshotIndex) - snapshotIndex)
        return Array(entries[start...])
    }

    /// Called when a Ready hands out entries through `index` to persist.
    mutating func markPersisting(through index: UInt64) {
        persistingIndex = max(persistingIndex, index)
    }

    /// Committed entries not yet handed out to apply, up to `maxBytes`.
    func nextCommittedEntries(maxBytes: Int) -> [Entry] {
        guard committed > applying, pendingSnapshot == nil else { return [] }
        let low = applying + 1
        guard low > snapshotIndex else { return [] }
        var result: [Entry] = []
        var bytes = 0
        var index = low
        while index <= committed {
            let entry = entries[Int(index - snapshotIndex - 1)]
            bytes += entry.sizeBytes
            if !result.isEmpty && bytes > maxBytes { break }
            result.append(entry)
            index += 1
        }
        return result
    }

    var hasNextCommittedEntries: Bool { committed > applying && pendingSnapshot == nil }

    mutating func markApplying(through index: UInt64) { applying = max(applying, index) }
    mutating func markApplied(through index: UInt64) { applied = max(applied, index) }

    /// Called when the caller persisted entries up to `index` with `term`.
    /// Ignored if the log changed there since (a newer leader replaced it).
    mutating func markStable(through index: UInt64, term: UInt64) {
        if matchTerm(index, term), index > stableIndex { stableIndex = index }
    }

    /// Installs a snapshot from the leader, discarding the whole log (§7).
    mutating func restore(_ snapshot: Snapshot) {
        let metadata = snapshot.metadata
        snapshotIndex = metadata.index
        snapshotTerm = metadata.term
        snapshotConfiguration = metadata.configuration
        self.snapshot = snapshot
        pendingSnapshot = snapshot
        entries.removeAll()
        configurationIndexes.removeAll()
        stableIndex = metadata.index
        persistingIndex = metadata.index
        committed = metadata.index
    }

    /// The caller persisted and applied the pending snapshot.
    mutating func snapshotApplied(_ snapshot: Snapshot) {
        if pendingSnapshot?.metadata == snapshot.metadata { pendingSnapshot = nil }
        applying = max(applying, snapshot.metadata.index)
        applied = max(applied, snapshot.metadata.index)
    }

    /// Replaces entries through `index` with the application's snapshot.
    mutating func compact(through index: UInt64, data: [UInt8]) -> Snapshot {
        precondition(index > snapshotIndex && index <= applied, "compact(through: \(index)) outside (\(snapshotIndex), \(applied)]")
        let term = self.term(at: index)!
        let configurationBefore = configuration(atOrBefore: index)
        let drop = Int(index - snapshotIndex)
        entries.removeFirst(drop)
        configurationIndexes.removeAll { $0 <= index }
        snapshotIndex = index
        snapshotTerm = term
        snapshotConfiguration = configurationBefore
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: index, term: term, configuration: configurationBefore), data: data)
        self.snapshot = snapshot
        return snapshot
    }

    /// The configuration in force at `index`.
    func configuration(atOrBefore index: UInt64) -> Configuration {
        for configurationIndex in configurationIndexes.reversed() where configurationIndex <= index {
            if let entry = entry(at: configurationIndex), let configuration = Configuration(encoded: entry.data) {
                return configuration
            }
        }
        return snapshotConfiguration
    }
}

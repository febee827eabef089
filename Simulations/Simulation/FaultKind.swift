/// The kinds of fault a simulation may inject. `--faults` takes a comma
/// list of their raw values; every kind is enabled by default.
public enum FaultKind: String, Sendable, CaseIterable, Comparable {
    /// Messages dropped on the wire.
    case loss
    /// Messages delivered twice.
    case duplicate
    /// Messages delayed by a long tail, so later ones overtake them.
    case reorder
    /// Symmetric and asymmetric partitions, including isolating the leader.
    case partition
    /// Members crash (losing unsynced writes, sometimes between sending
    /// `messagesBeforePersist` and persisting a Ready) and restart.
    case crash
    /// Learners added and promoted, members removed.
    case membership
    /// Leadership transfers.
    case transfer
    /// Log compaction into application snapshots, hence snapshot installs.
    case snapshot
    /// `services`: worker hosts die with their containers and come back later.
    case workerDeath = "worker-death"

    public static func < (lhs: FaultKind, rhs: FaultKind) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Parses `loss,crash,...`; `all` and `none` are accepted too.
    public static func parseList(_ text: String) throws(SimulationUsageError) -> [FaultKind] {
        if text == "all" { return allCases }
        if text == "none" || text.isEmpty { return [] }
        var kinds: [FaultKind] = []
        for name in text.split(separator: ",") {
            guard let kind = FaultKind(rawValue: String(name)) else {
                let known = allCases.map(\.rawValue).joined(separator: ",")
                throw SimulationUsageError("unknown fault kind '\(name)'; known kinds: \(known)")
            }
            if !kinds.contains(kind) { kinds.append(kind) }
        }
        return kinds.sorted()
    }
}

/// The members of a Raft group: voters decide elections and commits; learners
/// receive the log but never vote and never count towards a quorum.
///
/// Membership changes one server at a time (Raft dissertation §4.1 and
/// §4.3), not by joint consensus. Why this is safe here:
/// - Each change adds or removes at most one voter, so any majority of the old
///   voter set and any majority of the new one share a member: two leaders
///   cannot be elected in one term across the change.
/// - A configuration takes effect on every member as soon as its entry is
///   appended to that member's log, committed or not; a member whose entry is
///   truncated falls back to the previous configuration in its log. So every
///   member always acts on the newest configuration it holds, as §4.1 requires.
/// - A leader accepts a change only when (a) the previous configuration entry
///   is committed, so at most two configurations are ever in use at once, and
///   (b) it has committed an entry of its own term, which closes the known flaw
///   of single-server changes across leader changes (Ongaro, raft-dev,
///   2015-07: "bug in single-server membership changes").
/// - Adding or removing a learner does not change the voter set at all;
///   promoting a learner is adding one voter.
/// Joint consensus would allow arbitrary changes in one step, which Shoal's
/// `node promote/demote/rm` commands never need.
public struct Configuration: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Sorted ascending, no duplicates.
    public private(set) var voters: [NodeID]
    /// Sorted ascending, no duplicates, disjoint from `voters`.
    public private(set) var learners: [NodeID]

    public init(voters: [NodeID], learners: [NodeID] = []) {
        self.voters = Array(Set(voters)).sorted()
        let voterSet = Set(voters)
        self.learners = Array(Set(learners).subtracting(voterSet)).sorted()
    }

    public static let empty = Configuration(voters: [])

    /// Voters and learners, ascending.
    public var members: [NodeID] { (voters + learners).sorted() }

    public func isVoter(_ id: NodeID) -> Bool { voters.contains(id) }
    public func isLearner(_ id: NodeID) -> Bool { learners.contains(id) }
    public func contains(_ id: NodeID) -> Bool { isVoter(id) || isLearner(id) }

    /// The number of votes that make a majority of voters.
    public var quorum: Int { voters.count / 2 + 1 }

    /// Whether `granted` holds a majority of voters.
    public func hasQuorum<S: Sequence>(_ granted: S) -> Bool where S.Element == NodeID {
        var count = 0
        for id in Set(granted) where voters.contains(id) { count += 1 }
        return count >= quorum
    }

    /// The configuration after `change`, or why the change is not allowed.
    public func applying(_ change: ConfigurationChange) throws(RaftError) -> Configuration {
        switch change {
        case .addVoter(let id):
            if isVoter(id) { throw .invalidConfigurationChange("member \(id) is already a voter") }
            return Configuration(voters: voters + [id], learners: learners.filter { $0 != id })
        case .addLearner(let id):
            if isVoter(id) { throw .invalidConfigurationChange("member \(id) is a voter; remove it before adding it as a learner") }
            if isLearner(id) { throw .invalidConfigurationChange("member \(id) is already a learner") }
            return Configuration(voters: voters, learners: learners + [id])
        case .promote(let id):
            guard isLearner(id) else { throw .invalidConfigurationChange("member \(id) is not a learner, so it cannot be promoted") }
            return Configuration(voters: voters + [id], learners: learners.filter { $0 != id })
        case .remove(let id):
            guard contains(id) else { throw .invalidConfigurationChange("member \(id) is not in the group") }
            let next = Configuration(voters: voters.filter { $0 != id }, learners: learners.filter { $0 != id })
            if next.voters.isEmpty { throw .invalidConfigurationChange("removing member \(id) would leave no voters") }
            return next
        }
    }

    public var description: String {
        learners.isEmpty ? "voters=\(voters)" : "voters=\(voters) learners=\(learners)"
    }

    // MARK: Encoding (the payload of configuration entries)

    /// A compact, versioned encoding: version byte, voter count, voters,
    /// learner count, learners, each a LEB128 varint.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = [1]
        Varint.append(UInt64(voters.count), to: &bytes)
        for id in voters { Varint.append(id, to: &bytes) }
        Varint.append(UInt64(learners.count), to: &bytes)
        for id in learners { Varint.append(id, to: &bytes) }
        return bytes
    }

    /// Decodes ``encoded()``; nil for bytes that are not a configuration
    /// (corrupt storage or a hostile peer), never a crash.
    public init?(encoded bytes: [UInt8]) {
        var reader = Varint.Reader(bytes)
        guard reader.readByte() == 1 else { return nil }
        let maxMembers: UInt64 = 10_000
        guard let voterCount = reader.read(), voterCount <= maxMembers else { return nil }
        var voters: [NodeID] = []
        for _ in 0..<voterCount {
            guard let id = reader.read(), id != 0 else { return nil }
            voters.append(id)
        }
        guard let learnerCount = reader.read(), learnerCount <= maxMembers else { return nil }
        var learners: [NodeID] = []
        for _ in 0..<learnerCount {
            guard let id = reader.read(), id != 0 else { return nil }
            learners.append(id)
        }
        guard reader.isAtEnd else { return nil }
        self.init(voters: voters, learners: learners)
    }
}

/// One single-server membership change, as proposed by an operator.
public enum ConfigurationChange: Sendable, Equatable, Hashable {
    case addVoter(NodeID)
    case addLearner(NodeID)
    case promote(NodeID)
    case remove(NodeID)
}

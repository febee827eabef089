import Raft
import Wire

/// Body: voters, learners, each a count then member ids (varints), ascending.
///
/// Decoding is strict where `Configuration.init` would silently repair: ids
/// must be non-zero, strictly ascending (so no duplicates) and the two lists
/// disjoint. A peer that sends anything else is buggy, and repairing its list
/// could change who votes.
extension Configuration: WireCodable {
    public func encode(to writer: inout WireWriter) {
        writer.writeArray(voters) { writer, id in writer.writeVarint(id) }
        writer.writeArray(learners) { writer, id in writer.writeVarint(id) }
    }

    public init(from reader: inout WireReader) throws(WireError) {
        let voters = try Self.readMembers(&reader, list: "voters", alreadyRead: 0)
        let learnersOffset = reader.offset
        let learners = try Self.readMembers(&reader, list: "learners", alreadyRead: voters.count)
        var voterIndex = 0
        for learner in learners {
            while voterIndex < voters.count && voters[voterIndex] < learner { voterIndex += 1 }
            if voterIndex < voters.count && voters[voterIndex] == learner {
                throw WireError.invalidValue(offset: learnersOffset, type: "Configuration",
                                             reason: "member \(learner) is both a voter and a learner")
            }
        }
        self.init(voters: voters, learners: learners)
    }

    private static func readMembers(_ reader: inout WireReader, list: String, alreadyRead: Int) throws(WireError) -> [NodeID] {
        let countOffset = reader.offset
        let count = try reader.readLength()
        guard alreadyRead + count <= RaftWireLimits.maxConfigurationMembers else {
            throw WireError.lengthExceedsLimit(offset: countOffset, declared: UInt64(alreadyRead + count),
                                               limit: RaftWireLimits.maxConfigurationMembers)
        }
        var ids: [NodeID] = []
        ids.reserveCapacity(count)
        for _ in 0..<count {
            let idOffset = reader.offset
            let id = try reader.readVarint()
            if id == 0 {
                throw WireError.invalidValue(offset: idOffset, type: "Configuration", reason: "member id 0 in \(list) (0 means none)")
            }
            if let previous = ids.last, id <= previous {
                throw WireError.invalidValue(offset: idOffset, type: "Configuration",
                                             reason: "\(list) not strictly ascending (\(id) after \(previous))")
            }
            ids.append(id)
        }
        return ids
    }
}

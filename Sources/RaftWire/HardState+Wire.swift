import Raft
import Wire

/// Body: term, vote, commit (varints). Written to storage by shells that
/// choose the Wire format; Raft never reads it from a peer.
extension HardState: WireCodable {
    public func encode(to writer: inout WireWriter) {
        writer.writeVarint(term)
        writer.writeVarint(vote)
        writer.writeVarint(commit)
    }

    public init(from reader: inout WireReader) throws(WireError) {
        let term = try reader.readVarint()
        let vote = try reader.readVarint()
        let commit = try reader.readVarint()
        self.init(term: term, vote: vote, commit: commit)
    }
}

import Raft
import Wire

/// A Raft message between managers, one per frame.
///
/// Body (version 1), in this order: kind (one-byte tag), from, to, term,
/// logTerm, index (varints), entries (count, then nested entries), commit
/// (varint), reject (bool), rejectHint (varint), snapshot (optional nested),
/// readID (varint), context (bytes). Every field is written for every kind:
/// unused ones are zero and cost one byte each, which keeps the codec free
/// of per-kind branches that could drift from the Raft core.
///
/// Fields added later are appended after `context` (see `WireCodable`);
/// version 1 readers skip them.
extension Message: WireCodable {
    public func encode(to writer: inout WireWriter) {
        writer.writeTag(kind)
        writer.writeVarint(from)
        writer.writeVarint(to)
        writer.writeVarint(term)
        writer.writeVarint(logTerm)
        writer.writeVarint(index)
        writer.writeArray(entries)
        writer.writeVarint(commit)
        writer.writeBool(reject)
        writer.writeVarint(rejectHint)
        writer.writeOptional(snapshot)
        writer.writeVarint(readID)
        writer.writeBytes(context)
    }

    public init(from reader: inout WireReader) throws(WireError) {
        let kind = try reader.readTag(Message.Kind.self)
        let from = try reader.readVarint()
        let to = try reader.readVarint()
        let term = try reader.readVarint()
        let logTerm = try reader.readVarint()
        let index = try reader.readVarint()
        let entries = try reader.readArray(minimumElementBytes: RaftWireLimits.minimumEntryBytes) {
            (reader: inout WireReader) throws(WireError) -> Entry in try reader.read(Entry.self)
        }
        let commit = try reader.readVarint()
        let reject = try reader.readBool()
        let rejectHint = try reader.readVarint()
        let snapshot = try reader.readOptional(Snapshot.self)
        let readID = try reader.readVarint()
        let context = try reader.readBytes()
        self.init(kind: kind, from: from, to: to, term: term, logTerm: logTerm, index: index,
                  entries: entries, commit: commit, reject: reject, rejectHint: rejectHint,
                  snapshot: snapshot, readID: readID, context: context)
    }
}

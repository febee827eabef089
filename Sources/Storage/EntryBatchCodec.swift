import Raft
import Wire

/// The payload of one `entry_batches` row: consecutive entries back to back,
/// each as varint term, kind byte, length-prefixed data. Indexes are implied
/// by the row's first index.
enum EntryBatchCodec {
    static func append(_ entry: Entry, to writer: inout WireWriter) {
        writer.writeVarint(entry.term)
        writer.writeTag(entry.kind)
        writer.writeBytes(entry.data)
    }

    /// Decodes exactly `count` entries starting at `firstIndex`, or throws a
    /// ``WireError`` (truncated, unknown kind, trailing bytes, ...).
    static func decode(_ payload: [UInt8], firstIndex: UInt64, count: UInt64) throws(WireError) -> [Entry] {
        var reader = WireReader(payload, maxLengthBytes: payload.count)
        // Every entry takes at least three bytes, so a count beyond that is a lie.
        guard count <= UInt64(payload.count / 3) else {
            throw .lengthExceedsLimit(offset: 0, declared: count, limit: payload.count / 3)
        }
        var entries: [Entry] = []
        entries.reserveCapacity(Int(count))
        for position in 0..<count {
            let term = try reader.readVarint()
            let kind = try reader.readTag(Entry.Kind.self)
            let data = try reader.readBytes()
            entries.append(Entry(term: term, index: firstIndex + position, kind: kind, data: data))
        }
        try reader.expectEnd()
        return entries
    }
}

import Raft
import Wire

/// Body: term, index (varints), kind (one-byte tag), data (bytes).
extension Entry: WireCodable {
    public func encode(to writer: inout WireWriter) {
        writer.writeVarint(term)
        writer.writeVarint(index)
        writer.writeTag(kind)
        writer.writeBytes(data)
    }

    public init(from reader: inout WireReader) throws(WireError) {
        let term = try reader.readVarint()
        let index = try reader.readVarint()
        let kind = try reader.readTag(Entry.Kind.self)
        let data = try reader.readBytes()
        self.init(term: term, index: index, kind: kind, data: data)
    }
}

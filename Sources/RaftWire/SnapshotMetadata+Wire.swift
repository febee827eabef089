import Raft
import Wire

/// Body: index, term (varints), configuration (nested).
extension SnapshotMetadata: WireCodable {
    public func encode(to writer: inout WireWriter) {
        writer.writeVarint(index)
        writer.writeVarint(term)
        writer.write(configuration)
    }

    public init(from reader: inout WireReader) throws(WireError) {
        let index = try reader.readVarint()
        let term = try reader.readVarint()
        let configuration = try reader.read(Configuration.self)
        self.init(index: index, term: term, configuration: configuration)
    }
}

import Raft
import Wire

/// Body: metadata (nested), data (bytes).
extension Snapshot: WireCodable {
    public func encode(to writer: inout WireWriter) {
        writer.write(metadata)
        writer.writeBytes(data)
    }

    public init(from reader: inout WireReader) throws(WireError) {
        let metadata = try reader.read(SnapshotMetadata.self)
        let data = try reader.readBytes()
        self.init(metadata: metadata, data: data)
    }
}

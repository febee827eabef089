import Foundation
import Wire

/// The binary format of log entries (format 2): a Wire message of
/// `timeMilliseconds` (signed varint), a command tag, then the command.
///
/// The commands written most often — configs and secrets, the bulk of API
/// writes — have a binary body; every other command is carried as its JSON
/// (tag `json`), so the closed enum keeps one source of truth for its
/// encoding and a new case needs no new tag. JSON entries of format 1 still
/// decode (``ClusterProposal/init(encoded:)``).
extension ClusterProposal: WireCodable {
    public static var wireVersion: UInt8 { 2 }

    enum CommandTag: UInt8 {
        case json = 0
        case createConfig = 1
        case createSecret = 2
        case removeConfig = 3
        case removeSecret = 4
    }

    public func encode(to writer: inout WireWriter) {
        writer.writeSigned(timeMilliseconds)
        switch command {
        case .createConfig(let id, let spec):
            writer.writeTag(CommandTag.createConfig)
            writer.writeString(id.rawValue)
            Self.write(spec, to: &writer)
        case .createSecret(let id, let spec):
            writer.writeTag(CommandTag.createSecret)
            writer.writeString(id.rawValue)
            Self.write(spec, to: &writer)
        case .removeConfig(let id):
            writer.writeTag(CommandTag.removeConfig)
            writer.writeString(id.rawValue)
        case .removeSecret(let id):
            writer.writeTag(CommandTag.removeSecret)
            writer.writeString(id.rawValue)
        default:
            writer.writeTag(CommandTag.json)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            // Encoding plain Codable values cannot fail.
            writer.writeBytes(try! encoder.encode(command))
        }
    }

    public init(from reader: inout WireReader) throws(WireError) {
        let time = try reader.readSigned()
        let command: ClusterCommand
        switch try reader.readTag(CommandTag.self) {
        case .createConfig:
            command = .createConfig(id: try Self.readID(&reader), spec: try Self.readPayload(&reader))
        case .createSecret:
            command = .createSecret(id: try Self.readID(&reader), spec: try Self.readPayload(&reader))
        case .removeConfig:
            command = .removeConfig(id: try Self.readID(&reader))
        case .removeSecret:
            command = .removeSecret(id: try Self.readID(&reader))
        case .json:
            let start = reader.offset
            let bytes = try reader.readBytes()
            do {
                command = try JSONDecoder().decode(ClusterCommand.self, from: Data(bytes))
            } catch {
                throw WireError.invalidValue(offset: start, type: "ClusterCommand", reason: "\(error)")
            }
        }
        self.init(timeMilliseconds: time, command: command)
    }

    /// Labels in key order, so equal specs give equal bytes.
    private static func write(_ spec: NamedPayload, to writer: inout WireWriter) {
        writer.writeString(spec.name)
        writer.writeArray(spec.labels.sorted { $0.key < $1.key }) { writer, label in
            writer.writeString(label.key)
            writer.writeString(label.value)
        }
        writer.writeBytes(spec.data)
    }

    private static func readPayload(_ reader: inout WireReader) throws(WireError) -> NamedPayload {
        let start = reader.offset
        let name = try reader.readString()
        let labels = try reader.readArray { (reader: inout WireReader) throws(WireError) in (try reader.readString(), try reader.readString()) }
        var table: [String: String] = [:]
        for (key, value) in labels {
            guard table.updateValue(value, forKey: key) == nil else {
                throw WireError.invalidValue(offset: start, type: "labels", reason: "label '\(key)' appears twice")
            }
        }
        return NamedPayload(name: name, labels: table, data: try reader.readBytes())
    }

    private static func readID(_ reader: inout WireReader) throws(WireError) -> ObjectID {
        let start = reader.offset
        let text = try reader.readString()
        guard let id = ObjectID(text) else { throw WireError.invalidValue(offset: start, type: "ObjectID", reason: "'\(text)' is not an object id") }
        return id
    }
}

import Foundation
import Wire

/// The binary format of log entries: a Wire message of `timeMilliseconds`
/// (signed varint), then the command (a tag and its body).
///
/// Format 2 gave a binary body to configs and secrets; format 3 adds the
/// commands the leader and the agents write most — task creation,
/// assignment, status, desired state, removal, and batches of them, most of
/// the log of a busy cluster and what every manager decodes on apply.
/// Every other command is carried as its JSON (tag `json`), so the closed
/// enum keeps one source of truth for its encoding and a new case needs no
/// new tag. Tags never change meaning: a format 2 entry is read as it was
/// written, and JSON entries of format 1 still decode
/// (``ClusterProposal/init(encoded:)``). A manager of format 2 refuses a
/// format 3 entry with `unknownVersion` instead of misreading it. Format 4
/// adds the host address to each published port of a task's status (a
/// format 3 entry's ports have none).
extension ClusterProposal: WireCodable {
    public static var wireVersion: UInt8 { 4 }

    enum CommandTag: UInt8 {
        case json = 0
        case createConfig = 1
        case createSecret = 2
        case removeConfig = 3
        case removeSecret = 4
        // Format 3.
        case createTasks = 5
        case assignTask = 6
        case updateTaskStatus = 7
        case setTaskDesiredState = 8
        case removeTasks = 9
        /// Its commands, each as a length-delimited tag and body.
        case batch = 10
    }

    public func encode(to writer: inout WireWriter) {
        writer.writeSigned(timeMilliseconds)
        Self.write(command, to: &writer)
    }

    public init(from reader: inout WireReader) throws(WireError) {
        let time = try reader.readSigned()
        self.init(timeMilliseconds: time, command: try Self.readCommand(&reader))
    }

    private static func write(_ command: ClusterCommand, to writer: inout WireWriter) {
        switch command {
        case .createConfig(let id, let spec):
            writer.writeTag(CommandTag.createConfig)
            writer.writeString(id.rawValue)
            write(spec, to: &writer)
        case .createSecret(let id, let spec):
            writer.writeTag(CommandTag.createSecret)
            writer.writeString(id.rawValue)
            write(spec, to: &writer)
        case .removeConfig(let id):
            writer.writeTag(CommandTag.removeConfig)
            writer.writeString(id.rawValue)
        case .removeSecret(let id):
            writer.writeTag(CommandTag.removeSecret)
            writer.writeString(id.rawValue)
        case .createTasks(let newTasks):
            writer.writeTag(CommandTag.createTasks)
            writer.writeArray(newTasks) { writer, task in
                writer.writeString(task.id.rawValue)
                writer.writeString(task.serviceID.rawValue)
                writer.writeSigned(Int64(task.slot))
                writer.writeOptional(task.nodeID) { writer, nodeID in writer.writeString(nodeID.rawValue) }
                writer.writeArray(task.restartHistoryMilliseconds) { writer, time in writer.writeSigned(time) }
            }
        case .assignTask(let id, let expectedVersion, let nodeID):
            writer.writeTag(CommandTag.assignTask)
            writer.writeString(id.rawValue)
            writer.writeVarint(expectedVersion)
            writer.writeString(nodeID.rawValue)
        case .updateTaskStatus(let id, let status):
            writer.writeTag(CommandTag.updateTaskStatus)
            writer.writeString(id.rawValue)
            write(status, to: &writer)
        case .setTaskDesiredState(let id, let expectedVersion, let desiredState):
            writer.writeTag(CommandTag.setTaskDesiredState)
            writer.writeString(id.rawValue)
            writer.writeOptional(expectedVersion) { writer, version in writer.writeVarint(version) }
            writer.writeVarint(UInt64(desiredState.rawValue))
        case .removeTasks(let ids):
            writer.writeTag(CommandTag.removeTasks)
            writer.writeArray(ids) { writer, id in writer.writeString(id.rawValue) }
        case .batch(let commands):
            writer.writeTag(CommandTag.batch)
            writer.writeArray(commands) { writer, command in
                writer.writeLengthDelimited { writer in write(command, to: &writer) }
            }
        default:
            writer.writeTag(CommandTag.json)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            // Encoding plain Codable values cannot fail.
            writer.writeBytes(try! encoder.encode(command))
        }
    }

    private static func readCommand(_ reader: inout WireReader) throws(WireError) -> ClusterCommand {
        switch try reader.readTag(CommandTag.self) {
        case .createConfig:
            return .createConfig(id: try readID(&reader), spec: try readPayload(&reader))
        case .createSecret:
            return .createSecret(id: try readID(&reader), spec: try readPayload(&reader))
        case .removeConfig:
            return .removeConfig(id: try readID(&reader))
        case .removeSecret:
            return .removeSecret(id: try readID(&reader))
        case .createTasks:
            let newTasks = try reader.readArray { (reader: inout WireReader) throws(WireError) in
                ClusterCommand.NewTask(
                    id: try readID(&reader), serviceID: try readID(&reader), slot: try readInt(&reader, "slot"),
                    nodeID: try reader.readOptional { (reader: inout WireReader) throws(WireError) in try readID(&reader) },
                    restartHistoryMilliseconds: try reader.readArray { (reader: inout WireReader) throws(WireError) in try reader.readSigned() })
            }
            return .createTasks(newTasks)
        case .assignTask:
            return .assignTask(id: try readID(&reader), expectedVersion: try reader.readVarint(), nodeID: try readID(&reader))
        case .updateTaskStatus:
            return .updateTaskStatus(id: try readID(&reader), status: try readStatus(&reader))
        case .setTaskDesiredState:
            return .setTaskDesiredState(
                id: try readID(&reader), expectedVersion: try reader.readOptional { (reader: inout WireReader) throws(WireError) in try reader.readVarint() },
                desiredState: try readState(&reader))
        case .removeTasks:
            return .removeTasks(ids: try reader.readArray { (reader: inout WireReader) throws(WireError) in try readID(&reader) })
        case .batch:
            return .batch(try reader.readArray { (reader: inout WireReader) throws(WireError) in
                try reader.readLengthDelimited { (reader: inout WireReader) throws(WireError) in try readCommand(&reader) }
            })
        case .json:
            let start = reader.offset
            let bytes = try reader.readBytes()
            do {
                return try JSONDecoder().decode(ClusterCommand.self, from: Data(bytes))
            } catch {
                throw WireError.invalidValue(offset: start, type: "ClusterCommand", reason: "\(error)")
            }
        }
    }

    /// A task's observed state, every field in order.
    private static func write(_ status: ServiceTask.Status, to writer: inout WireWriter) {
        writer.writeVarint(UInt64(status.state.rawValue))
        writer.writeSigned(status.timestampMilliseconds)
        writer.writeString(status.message)
        writer.writeString(status.error)
        writer.writeOptional(status.exitCode) { writer, code in writer.writeSigned(Int64(code)) }
        writer.writeString(status.containerID)
        writer.writeOptional(status.health) { writer, health in writer.writeString(health.rawValue) }
        writer.writeArray(status.publishedPorts) { writer, port in
            writer.writeSigned(Int64(port.publishedPort))
            writer.writeSigned(Int64(port.targetPort))
            writer.writeString(port.transportProtocol.rawValue)
            writer.writeString(port.mode.rawValue)
            writer.writeOptional(port.hostAddress) { writer, address in writer.writeString(address) }
        }
    }

    private static func readStatus(_ reader: inout WireReader) throws(WireError) -> ServiceTask.Status {
        let state = try readState(&reader)
        let timestamp = try reader.readSigned()
        let message = try reader.readString()
        let error = try reader.readString()
        let exitCode = try reader.readOptional { (reader: inout WireReader) throws(WireError) in
            let start = reader.offset
            let value = try reader.readSigned()
            guard let code = Int32(exactly: value) else { throw WireError.invalidValue(offset: start, type: "exitCode", reason: "\(value) is not a 32-bit exit code") }
            return code
        }
        let containerID = try reader.readString()
        let health = try reader.readOptional { (reader: inout WireReader) throws(WireError) in
            try readRawValue(&reader, ServiceTask.Health.self)
        }
        let ports = try reader.readArray { (reader: inout WireReader) throws(WireError) in
            TaskTemplate.PublishedPort(
                publishedPort: try readInt(&reader, "publishedPort"), targetPort: try readInt(&reader, "targetPort"),
                transportProtocol: try readRawValue(&reader, TaskTemplate.PublishedPort.TransportProtocol.self),
                mode: try readRawValue(&reader, TaskTemplate.PublishedPort.Mode.self),
                hostAddress: reader.messageVersion < 4 ? nil : try reader.readOptional { (reader: inout WireReader) throws(WireError) in try reader.readString() })
        }
        return ServiceTask.Status(state: state, timestampMilliseconds: timestamp, message: message, error: error, exitCode: exitCode,
                                  containerID: containerID, health: health, publishedPorts: ports)
    }

    private static func readState(_ reader: inout WireReader) throws(WireError) -> ServiceTask.State {
        let start = reader.offset
        let raw = try reader.readVarint()
        guard raw <= UInt64(Int.max), let state = ServiceTask.State(rawValue: Int(raw)) else {
            throw WireError.unknownTag(offset: start, type: "ServiceTask.State", tag: raw)
        }
        return state
    }

    private static func readInt(_ reader: inout WireReader, _ field: String) throws(WireError) -> Int {
        let start = reader.offset
        let value = try reader.readSigned()
        guard let int = Int(exactly: value) else { throw WireError.invalidValue(offset: start, type: field, reason: "\(value) does not fit an Int") }
        return int
    }

    private static func readRawValue<T: RawRepresentable>(_ reader: inout WireReader, _ type: T.Type) throws(WireError) -> T where T.RawValue == String {
        let start = reader.offset
        let text = try reader.readString()
        guard let value = T(rawValue: text) else { throw WireError.invalidValue(offset: start, type: "\(T.self)", reason: "unknown value '\(text)'") }
        return value
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

import Foundation
import Wire

/// Encodes one container's ``ContainerState`` for its state.json, cheaply:
/// the state is written at every create, start and exit (more with health
/// checks), and Foundation's JSONEncoder spent most of a write on the spec,
/// which never changes after the create.
///
/// The part fixed at create (spec, user, cgroup layout and parent, creation
/// time) is encoded once with JSONEncoder and kept (again only when it
/// changed); the fields a run changes are written by hand after it, in the
/// forms the synthesized `Codable` conformances use, so ``ContainerState/read(from:)``
/// reads the result as it reads JSONEncoder's (same keys and values; only
/// the key order differs; JSONObjectWriter writes JSONEncoder's escapes). A field added to ``ContainerState`` must be
/// added here too: a test compares the keys with the Codable form's.
///
/// One per ``Container``, used under its lock.
struct ContainerStateEncoder {
    /// What a run never changes: encoded once.
    private struct FixedPart: Codable, Equatable {
        var spec: ContainerSpec
        var user: ResolvedUser
        var cgroupLayout: CgroupLayout
        var cgroupParent: String
        var createdAt: Date
    }

    private var fixed: (part: FixedPart, bytes: [UInt8])?

    /// The JSONEncoder configuration of the fixed part and of the rare
    /// fields written through it (health): compact, sorted keys, dates as
    /// ``ContainerState/iso8601(_:)``.
    static func makeJSONEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(ContainerState.iso8601(date))
        }
        return encoder
    }

    mutating func encode(_ state: ContainerState) throws -> [UInt8] {
        let part = FixedPart(spec: state.spec, user: state.user, cgroupLayout: state.cgroupLayout,
                             cgroupParent: state.cgroupParent, createdAt: state.createdAt)
        if fixed?.part != part {
            fixed = (part, Array(try Self.makeJSONEncoder().encode(part)))
        }
        // `{...fixed...}` without its closing brace, then the run's fields.
        var writer = JSONObjectWriter(opened: fixed!.bytes.dropLast())
        writer.field("exitStatus", json: state.exitStatus.map(Self.encode))
        writer.field("finishedAt", state.finishedAt.map(ContainerState.iso8601))
        writer.field("health", json: try state.health.map { Array(try Self.makeJSONEncoder().encode($0)) })
        writer.field("monitorPid", state.monitorPid)
        writer.field("monitorStartTicks", state.monitorStartTicks)
        writer.field("network", json: state.network.map(Self.encode))
        writer.field("oomKilled", state.oomKilled)
        writer.field("pid", state.pid)
        writer.field("processStartTicks", state.processStartTicks)
        writer.field("startError", state.startError)
        writer.field("startedAt", state.startedAt.map(ContainerState.iso8601))
        writer.field("status", state.status.rawValue)
        return writer.finished
    }

    /// As the synthesized Codable of an enum with associated values:
    /// `{"exited":{"_0":CODE}}`, `{"unknown":{}}`.
    static func encode(_ status: ExitStatus) -> [UInt8] {
        var object = JSONObjectWriter()
        switch status {
        case .exited(let code): object.field("exited", json: value(code))
        case .signaled(let signal): object.field("signaled", json: value(signal))
        case .unknown: object.field("unknown", json: JSONObjectWriter().finished)
        }
        return object.finished
    }

    private static func value(_ number: Int32) -> [UInt8] {
        var object = JSONObjectWriter()
        object.field("_0", number)
        return object.finished
    }

    static func encode(_ network: NetworkAttachment) -> [UInt8] {
        var object = JSONObjectWriter()
        object.field("address", network.address)
        object.field("bridge", network.bridge)
        object.field("gateway", network.gateway)
        object.field("hostInterface", network.hostInterface)
        object.field("ports", objects: network.ports) { entry, port in
            entry.field("containerPort", port.containerPort)
            entry.field("hostAddress", port.hostAddress)
            entry.field("hostPort", port.hostPort)
            entry.field("transport", port.transport.rawValue)
        }
        object.field("prefixLength", network.prefixLength)
        return object.finished
    }
}

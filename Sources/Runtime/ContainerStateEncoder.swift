import Foundation

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
/// the key order differs). A field added to ``ContainerState`` must be
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
        if let exitStatus = state.exitStatus { writer.key("exitStatus"); writer.exitStatus(exitStatus) }
        if let finishedAt = state.finishedAt { writer.key("finishedAt"); writer.string(ContainerState.iso8601(finishedAt)) }
        if let health = state.health {
            writer.key("health")
            writer.raw(Array(try Self.makeJSONEncoder().encode(health)))
        }
        if let monitorPid = state.monitorPid { writer.key("monitorPid"); writer.integer(monitorPid) }
        if let monitorStartTicks = state.monitorStartTicks { writer.key("monitorStartTicks"); writer.integer(monitorStartTicks) }
        if let network = state.network { writer.key("network"); writer.network(network) }
        writer.key("oomKilled"); writer.boolean(state.oomKilled)
        if let pid = state.pid { writer.key("pid"); writer.integer(pid) }
        if let processStartTicks = state.processStartTicks { writer.key("processStartTicks"); writer.integer(processStartTicks) }
        if let startError = state.startError { writer.key("startError"); writer.string(startError) }
        if let startedAt = state.startedAt { writer.key("startedAt"); writer.string(ContainerState.iso8601(startedAt)) }
        writer.key("status"); writer.string(state.status.rawValue)
        return writer.closed()
    }
}

import Foundation
import Wire

/// Encodes one container's ``ContainerState`` for its state.json, cheaply:
/// the state is written at every create, start and exit (more with health
/// checks), and Foundation's JSONEncoder spent most of a write on the spec
/// (about 0.1 ms of CPU a write, on the path of every `run`).
///
/// By hand, in the forms the synthesized `Codable` conformances use, so
/// ``ContainerState/read(from:)`` reads the result as it reads JSONEncoder's
/// (same keys and values, JSONEncoder's escapes through ``JSONObjectWriter``);
/// only a health check and health state still go through JSONEncoder (they
/// hold dates and are rare). The part fixed at create (spec, user, cgroup
/// layout and parent, creation time) is encoded once and kept (again only
/// when it changed). A field added to ``ContainerState`` or to a type it
/// holds must be added here too: tests compare a state with every field set,
/// and a spec with every field set (checked by reflection), with the
/// Codable form.
///
/// One per ``Container``, used under its lock.
struct ContainerStateEncoder {
    /// What a run never changes: encoded once.
    private struct FixedPart: Equatable {
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
            fixed = (part, try Self.encode(part))
        }
        // `{...fixed...}` without its closing brace, then the run's fields.
        var writer = JSONObjectWriter(opened: fixed!.bytes.dropLast())
        if let exitStatus = state.exitStatus { writer.field("exitStatus", object: { Self.write(exitStatus, to: &$0) }) }
        writer.field("finishedAt", state.finishedAt.map(ContainerState.iso8601))
        writer.field("health", json: try state.health.map { Array(try Self.makeJSONEncoder().encode($0)) })
        writer.field("monitorPid", state.monitorPid)
        writer.field("monitorStartTicks", state.monitorStartTicks)
        if let network = state.network { writer.field("network", object: { Self.write(network, to: &$0) }) }
        writer.field("oomKilled", state.oomKilled)
        writer.field("pid", state.pid)
        writer.field("processStartTicks", state.processStartTicks)
        writer.field("startError", state.startError)
        writer.field("startedAt", state.startedAt.map(ContainerState.iso8601))
        writer.field("status", state.status.rawValue)
        return writer.finished
    }

    private static func encode(_ part: FixedPart) throws -> [UInt8] {
        var object = JSONObjectWriter()
        object.field("cgroupLayout", part.cgroupLayout.rawValue)
        object.field("cgroupParent", part.cgroupParent)
        object.field("createdAt", ContainerState.iso8601(part.createdAt))
        var failure: (any Error)?
        object.field("spec", object: { spec in
            do { try write(part.spec, to: &spec) } catch { failure = error }
        })
        if let failure { throw failure }
        object.field("user", object: { user in
            user.field("additionalGroups", part.user.additionalGroups.map(Int.init))
            user.field("gid", part.user.gid)
            user.field("home", part.user.home)
            user.field("uid", part.user.uid)
        })
        return object.finished
    }

    static func write(_ spec: ContainerSpec, to object: inout JSONObjectWriter) throws {
        object.field("capabilities", spec.capabilities)
        object.field("command", spec.command)
        object.field("environment", spec.environment)
        object.field("healthCheck", json: try spec.healthCheck.map { Array(try makeJSONEncoder().encode($0)) })
        object.field("hostname", spec.hostname)
        object.field("id", spec.id)
        object.field("limits", object: { limits in
            limits.field("cpuPeriodMicroseconds", spec.limits.cpuPeriodMicroseconds)
            limits.field("cpuQuotaMicroseconds", spec.limits.cpuQuotaMicroseconds)
            limits.field("cpuWeight", spec.limits.cpuWeight)
            limits.field("memoryLimitBytes", spec.limits.memoryLimitBytes)
            limits.field("memorySwapLimitBytes", spec.limits.memorySwapLimitBytes)
            limits.field("pidsLimit", spec.limits.pidsLimit)
        })
        object.field("links", objects: spec.links) { entry, link in
            entry.field("alias", link.alias)
            entry.field("container", link.container)
        }
        if let logging = spec.logging {
            object.field("logging", object: { entry in
                entry.field("maxFiles", logging.maxFiles)
                entry.field("maxSizeBytes", logging.maxSizeBytes)
            })
        }
        object.field("maskedPaths", spec.maskedPaths)
        object.field("mounts", objects: spec.mounts) { entry, mount in
            entry.field("destination", mount.destination)
            entry.field("readOnly", mount.readOnly)
            entry.field("recursive", mount.recursive)
            entry.field("source", mount.source)
        }
        object.field("network", spec.network.rawValue)
        object.field("noNewPrivileges", spec.noNewPrivileges)
        object.field("publishedPorts", objects: spec.publishedPorts) { entry, port in
            writePort(port.hostAddress, port.hostPort, port.containerPort, port.transport, to: &entry)
        }
        object.field("readOnlyPaths", spec.readOnlyPaths)
        object.field("readOnlyRootFilesystem", spec.readOnlyRootFilesystem)
        object.field("resourceLimits", objects: spec.resourceLimits) { entry, limit in
            entry.field("hard", limit.hard)
            entry.field("resource", limit.resource)
            entry.field("soft", limit.soft)
        }
        // As the synthesized Codable of an enum with associated values.
        object.field("rootFilesystem", object: { root in
            switch spec.rootFilesystem {
            case .directory(let path):
                root.field("directory", object: { $0.field("_0", path) })
            case .overlay(let lower, let upper, let work, let mountPoint):
                root.field("overlay", object: { value in
                    value.field("lowerDirectories", lower)
                    value.field("mountPoint", mountPoint)
                    value.field("upperDirectory", upper)
                    value.field("workDirectory", work)
                })
            }
        })
        if let stdio = spec.stdio {
            object.field("stdio", object: { entry in
                entry.field("openStandardInput", stdio.openStandardInput)
                entry.field("standardInputOnce", stdio.standardInputOnce)
                entry.field("terminal", stdio.terminal)
                if let size = stdio.windowSize {
                    entry.field("windowSize", object: { window in
                        window.field("columns", size.columns)
                        window.field("rows", size.rows)
                    })
                }
            })
        }
        object.field("user", spec.user)
        if let mapping = spec.userNamespace {
            object.field("userNamespace", object: { entry in
                entry.field("hostGID", mapping.hostGID)
                entry.field("hostUID", mapping.hostUID)
                entry.field("size", mapping.size)
            })
        }
        object.field("workingDirectory", spec.workingDirectory)
    }

    /// As the synthesized Codable of an enum with associated values:
    /// `{"exited":{"_0":CODE}}`, `{"unknown":{}}`.
    static func write(_ status: ExitStatus, to object: inout JSONObjectWriter) {
        switch status {
        case .exited(let code): object.field("exited", object: { $0.field("_0", code) })
        case .signaled(let signal): object.field("signaled", object: { $0.field("_0", signal) })
        case .unknown: object.field("unknown", object: { _ in })
        }
    }

    static func write(_ network: NetworkAttachment, to object: inout JSONObjectWriter) {
        object.field("address", network.address)
        object.field("bridge", network.bridge)
        object.field("gateway", network.gateway)
        object.field("hostInterface", network.hostInterface)
        object.field("ports", objects: network.ports) { entry, port in
            writePort(port.hostAddress, port.hostPort, port.containerPort, port.transport, to: &entry)
        }
        object.field("prefixLength", network.prefixLength)
    }

    /// A ``PortMapping`` or a ``PublishedPort``: the same fields.
    private static func writePort(_ hostAddress: String, _ hostPort: UInt16, _ containerPort: UInt16, _ transport: PortTransport,
                                  to entry: inout JSONObjectWriter) {
        entry.field("containerPort", containerPort)
        entry.field("hostAddress", hostAddress)
        entry.field("hostPort", hostPort)
        entry.field("transport", transport.rawValue)
    }
}

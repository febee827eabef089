import Foundation

/// A container's lifecycle state: created -> running (<-> paused) -> exited;
/// only ``ContainerRuntime/prepareRestart(_:)`` takes an exited one back to created.
public enum ContainerStatus: String, Codable, Sendable {
    case created
    case running
    /// Running, with every process frozen by the cgroup freezer (`pause`).
    case paused
    case exited

    /// Whether the container's init exists (running or paused).
    public var hasProcess: Bool { self == .running || self == .paused }
}

/// What the runtime records about one container, as JSON in
/// `<state>/containers/<id>/state.json`; enough for a restarted daemon to
/// re-adopt the container (pid + the process's start time guard against pid
/// reuse).
public struct ContainerState: Codable, Equatable, Sendable {
    public var spec: ContainerSpec
    public var status: ContainerStatus
    public var user: ResolvedUser
    public var cgroupLayout: CgroupLayout
    public var cgroupParent: String
    public var pid: Int32?
    /// Field 22 of /proc/PID/stat (clock ticks after boot) when started.
    public var processStartTicks: UInt64?
    public var exitStatus: ExitStatus?
    public var oomKilled: Bool
    public var startError: String?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// Bridge containers: the leased address, veth and published ports.
    public var network: NetworkAttachment?
    /// The shoal-monitor process that is the init's parent and records its
    /// exit in `exit-status` (nil: the runtime itself was the parent).
    public var monitorPid: Int32?
    public var monitorStartTicks: UInt64?
    /// Docker's `State.Health`, while the spec has a ``HealthCheck``.
    public var health: HealthState?

    public var id: String { spec.id }
}

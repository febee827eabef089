/// What to run and how: the input of ``ContainerRuntime/create(_:)``.
/// Persisted with the container's state, so it is `Codable`.
public struct ContainerSpec: Codable, Equatable, Sendable {
    /// Unique per runtime; names the state directory and the cgroup.
    public var id: String
    public var rootFilesystem: RootFilesystem
    /// argv; `command[0]` is looked up in the container's `$PATH`.
    public var command: [String]
    /// `NAME=value` entries. PATH, HOSTNAME and HOME get defaults when absent.
    public var environment: [String]
    /// `name`, `uid`, `name:group` or `uid:gid`, resolved against the root
    /// filesystem's /etc/passwd and /etc/group. `nil` is root.
    public var user: String?
    /// Inside the container; `nil` is "/".
    public var workingDirectory: String?
    public var hostname: String?
    /// `--network`: own namespace with only `lo`, the host's, or the node
    /// bridge (an address leased per container, kept until delete).
    public var network: NetworkMode
    /// `-p`/`-P`: host ports proxied to the container's (bridge only). A
    /// mapping with host port 0 gets a free port, recorded in
    /// ``ContainerState/network``.
    public var publishedPorts: [PortMapping]
    /// `--link`: /etc/hosts entries for other bridge containers of this runtime.
    public var links: [ContainerLink]
    public var limits: ResourceLimits
    public var mounts: [BindMount]
    public var readOnlyRootFilesystem: Bool
    /// The capability bounding set; default Docker's 14.
    public var capabilities: UInt64
    public var noNewPrivileges: Bool
    public var resourceLimits: [ProcessLimit]
    /// Map container root to an unprivileged host range.
    public var userNamespace: UserNamespaceMapping?
    public var maskedPaths: [String]
    public var readOnlyPaths: [String]
    /// Log rotation; nil: one file without a size limit. (Optional so that
    /// state files written before it existed still decode.)
    public var logging: LogOptions?
    /// `--health-cmd` and friends (Docker's HEALTHCHECK); nil: no checks,
    /// ``ContainerState/health`` stays nil.
    public var healthCheck: HealthCheck?
    /// `-i`/`-t`: stdin kept open for attached clients, a pseudo-terminal;
    /// nil: stdin is /dev/null and stdout/stderr are pipes to the log.
    public var stdio: StdioOptions?

    public init(
        id: String,
        rootFilesystem: RootFilesystem,
        command: [String],
        environment: [String] = [],
        user: String? = nil,
        workingDirectory: String? = nil,
        hostname: String? = nil,
        network: NetworkMode = .none,
        limits: ResourceLimits = ResourceLimits(),
        mounts: [BindMount] = [],
        publishedPorts: [PortMapping] = [],
        links: [ContainerLink] = [],
        readOnlyRootFilesystem: Bool = false,
        capabilities: UInt64 = Capabilities.dockerDefault,
        noNewPrivileges: Bool = true,
        resourceLimits: [ProcessLimit] = [],
        userNamespace: UserNamespaceMapping? = nil,
        maskedPaths: [String] = ContainerSpec.defaultMaskedPaths,
        readOnlyPaths: [String] = ContainerSpec.defaultReadOnlyPaths,
        logging: LogOptions? = nil,
        healthCheck: HealthCheck? = nil,
        stdio: StdioOptions? = nil
    ) {
        self.id = id
        self.rootFilesystem = rootFilesystem
        self.command = command
        self.environment = environment
        self.user = user
        self.workingDirectory = workingDirectory
        self.hostname = hostname
        self.network = network
        self.limits = limits
        self.mounts = mounts
        self.publishedPorts = publishedPorts
        self.links = links
        self.readOnlyRootFilesystem = readOnlyRootFilesystem
        self.capabilities = capabilities
        self.noNewPrivileges = noNewPrivileges
        self.resourceLimits = resourceLimits
        self.userNamespace = userNamespace
        self.maskedPaths = maskedPaths
        self.readOnlyPaths = readOnlyPaths
        self.logging = logging
        self.healthCheck = healthCheck
        self.stdio = stdio
    }

    private enum CodingKeys: String, CodingKey {
        case id, rootFilesystem, command, environment, user, workingDirectory, hostname, network
        case publishedPorts, links, limits, mounts, readOnlyRootFilesystem, capabilities, noNewPrivileges
        case resourceLimits, userNamespace, maskedPaths, readOnlyPaths, logging, healthCheck, stdio
    }

    /// Decodes state written before published ports and links existed
    /// (absent means none), so a newer daemon re-adopts older containers.
    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        id = try values.decode(String.self, forKey: .id)
        rootFilesystem = try values.decode(RootFilesystem.self, forKey: .rootFilesystem)
        command = try values.decode([String].self, forKey: .command)
        environment = try values.decode([String].self, forKey: .environment)
        user = try values.decodeIfPresent(String.self, forKey: .user)
        workingDirectory = try values.decodeIfPresent(String.self, forKey: .workingDirectory)
        hostname = try values.decodeIfPresent(String.self, forKey: .hostname)
        network = try values.decode(NetworkMode.self, forKey: .network)
        publishedPorts = try values.decodeIfPresent([PortMapping].self, forKey: .publishedPorts) ?? []
        links = try values.decodeIfPresent([ContainerLink].self, forKey: .links) ?? []
        limits = try values.decode(ResourceLimits.self, forKey: .limits)
        mounts = try values.decode([BindMount].self, forKey: .mounts)
        readOnlyRootFilesystem = try values.decode(Bool.self, forKey: .readOnlyRootFilesystem)
        capabilities = try values.decode(UInt64.self, forKey: .capabilities)
        noNewPrivileges = try values.decode(Bool.self, forKey: .noNewPrivileges)
        resourceLimits = try values.decode([ProcessLimit].self, forKey: .resourceLimits)
        userNamespace = try values.decodeIfPresent(UserNamespaceMapping.self, forKey: .userNamespace)
        maskedPaths = try values.decode([String].self, forKey: .maskedPaths)
        readOnlyPaths = try values.decode([String].self, forKey: .readOnlyPaths)
        logging = try values.decodeIfPresent(LogOptions.self, forKey: .logging)
        healthCheck = try values.decodeIfPresent(HealthCheck.self, forKey: .healthCheck)
        stdio = try values.decodeIfPresent(StdioOptions.self, forKey: .stdio)
    }

    /// Docker's masked paths: kernel data a container must not read.
    public static let defaultMaskedPaths = [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
        "/sys/firmware", "/sys/devices/virtual/powercap",
    ]

    /// Docker's read-only paths: kernel knobs a container must not turn.
    public static let defaultReadOnlyPaths = [
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    ]
}

/// Where the container's "/" comes from.
public enum RootFilesystem: Codable, Equatable, Sendable {
    /// An unpacked root filesystem directory, bind-mounted as "/".
    case directory(String)
    /// Image layers: an overlay of `lowerDirectories` (topmost first) with
    /// the container's writable `upperDirectory` (and its `workDirectory`, on
    /// the same filesystem), mounted on `mountPoint` inside the container's
    /// own mount namespace (so it vanishes with the container).
    case overlay(lowerDirectories: [String], upperDirectory: String, workDirectory: String, mountPoint: String)

    /// Directories to search for /etc/passwd and /etc/group, topmost first.
    var layersTopFirst: [String] {
        switch self {
        case .directory(let path): return [path]
        case .overlay(let lower, let upper, _, _): return [upper] + lower
        }
    }
}

/// A host path made visible inside the container.
public struct BindMount: Codable, Equatable, Sendable {
    public var source: String
    public var destination: String
    public var readOnly: Bool
    public var recursive: Bool

    public init(source: String, destination: String, readOnly: Bool = false, recursive: Bool = true) {
        self.source = source
        self.destination = destination
        self.readOnly = readOnly
        self.recursive = recursive
    }
}

/// One rlimit (`RLIMIT_NOFILE` etc.) for the container's init.
public struct ProcessLimit: Codable, Equatable, Sendable {
    public var resource: Int32
    public var soft: UInt64
    public var hard: UInt64

    public init(resource: Int32, soft: UInt64, hard: UInt64) {
        self.resource = resource
        self.soft = soft
        self.hard = hard
    }
}

/// uid/gid maps for a user namespace: container ids `0..<size` are host ids
/// `hostID..<hostID+size`.
public struct UserNamespaceMapping: Codable, Equatable, Sendable {
    public var hostUID: UInt32
    public var hostGID: UInt32
    public var size: UInt32

    public init(hostUID: UInt32, hostGID: UInt32, size: UInt32) {
        self.hostUID = hostUID
        self.hostGID = hostGID
        self.size = size
    }
}

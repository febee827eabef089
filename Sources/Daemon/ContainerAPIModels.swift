import Foundation
import Images

// The bodies of the local container and volume API (`/v1/containers`,
// `/v1/volumes`), as `shoal container ...` and `shoal volume ...` send and
// read them. Option strings (`-v`, `-p`, `--restart`, `--memory`) travel as
// the user typed them and are parsed by the daemon, so a bad one gets the
// API's `{code,message,hint}` error whichever client sent it.

/// `POST /v1/containers`: `shoal container create|run`.
public struct ContainerCreateRequest: Codable, Sendable, Equatable {
    public var image: String
    public var name: String?
    /// Arguments after the image: replace the image's Cmd.
    public var command: [String]?
    /// `--entrypoint`: replaces the image's Entrypoint (and drops its Cmd, as Docker does).
    public var entrypoint: String?
    /// `-e`/`--env-file`: `NAME=value`.
    public var environment: [String]?
    public var hostname: String?
    public var user: String?
    public var workingDirectory: String?
    /// `-v NAME:/path[:ro]`, `-v /host:/path[:ro]`, `-v /path` (anonymous).
    public var volumes: [String]?
    /// `--volumes-from CONTAINER[:ro|rw]`.
    public var volumesFrom: [String]?
    /// `--memory 64m`.
    public var memory: String?
    /// `--cpus 1.5`.
    public var cpus: Double?
    public var pidsLimit: Int?
    /// `--restart no|always|unless-stopped|on-failure[:N]`.
    public var restart: String?
    /// `--stop-signal`: what `stop` sends first (TERM, SIGUSR1, 10); nil:
    /// the image's STOPSIGNAL, else SIGTERM. Stored resolved at create.
    public var stopSignal: String?
    /// `--stop-timeout`: seconds `stop` waits before SIGKILL when not given
    /// `-t`; nil: 10.
    public var stopTimeout: Int?
    /// `--rm`: removed (with its anonymous volumes) once it exits.
    public var autoRemove: Bool?
    /// `--network none|host|bridge`.
    public var network: String?
    /// `-p [IP:]HOST:CONTAINER[/tcp]`.
    public var publish: [String]?
    /// `-P`: every port the image exposes, on a free host port.
    public var publishAll: Bool?
    /// `--link NAME[:ALIAS]`.
    public var links: [String]?
    /// `--log-opt max-size=10m`, `--log-opt max-file=3`.
    public var logOptions: [String: String]?
    /// `--health-cmd` (run with `sh -c` inside, as Docker's CMD-SHELL).
    public var healthCommand: String?
    /// `--health-interval`, `--health-timeout`, `--health-start-period`: `30s`, `500ms`, `1m`.
    public var healthInterval: String?
    public var healthTimeout: String?
    public var healthStartPeriod: String?
    public var healthRetries: Int?
    /// `--no-healthcheck`: the image's HEALTHCHECK is not run.
    public var noHealthcheck: Bool?
    /// `-i`: keep stdin open; attached clients write to it
    /// (`POST /v1/containers/{id}/attach`).
    public var interactive: Bool?
    /// With `-i`: the first attached client's end of input closes the
    /// container's stdin (Docker's StdinOnce; `run -i` without `-d`).
    public var stdinOnce: Bool?
    /// `-t`: a pseudo-terminal is the main process's stdin, stdout and stderr.
    public var tty: Bool?
    /// With `-t`: the terminal's `[rows, columns]` at start (Docker's ConsoleSize).
    public var consoleSize: [Int]?

    public init(image: String) { self.image = image }
}

/// The answer to a create: the new container's id and name.
public struct ContainerCreateReply: Codable, Sendable {
    public var id: String
    public var name: String
}

/// One row of `GET /v1/containers` (`shoal container ps`).
public struct ContainerSummary: Codable, Sendable {
    public var id: String
    public var name: String
    public var image: String
    public var command: String
    /// RFC 3339.
    public var createdAt: String
    /// created, running, exited (Docker's words).
    public var state: String
    /// `Up 3 seconds`, `Exited (0) 2 seconds ago`, `Created`.
    public var status: String
    public var exitCode: Int32?
    public var ports: [String]
    /// A service task's container (run by the node's agent): docker's
    /// `com.docker.swarm.*` labels. nil for the engine's own containers.
    public var labels: [String: String]? = nil
}

/// `GET /v1/containers/{id}`: Docker's inspect shape (capitalized keys), so
/// `--format '{{.State.Pid}}'` reads as it does with docker.
public struct ContainerInspectView: Codable, Sendable {
    public struct Health: Codable, Sendable {
        public struct Probe: Codable, Sendable {
            public var Start: String
            public var End: String
            public var ExitCode: Int32
            public var Output: String
        }

        /// starting, healthy or unhealthy.
        public var Status: String
        public var FailingStreak: Int
        public var Log: [Probe]
    }

    public struct State: Codable, Sendable {
        public var Status: String
        public var Running: Bool
        public var Paused: Bool
        public var Restarting: Bool
        public var OOMKilled: Bool
        public var Dead: Bool
        public var Pid: Int32
        public var ExitCode: Int32
        public var Error: String
        public var StartedAt: String
        public var FinishedAt: String
        /// Present when the container has a health check.
        public var Health: Health?
    }

    public struct RestartPolicyView: Codable, Sendable {
        public var Name: String
        public var MaximumRetryCount: Int
    }

    public struct HostConfig: Codable, Sendable {
        public var AutoRemove: Bool
        public var RestartPolicy: RestartPolicyView
        public var Memory: Int64
        public var NanoCpus: Int64
        public var PidsLimit: Int
        public var NetworkMode: String
        public var Binds: [String]
        public var VolumesFrom: [String]
        public var Links: [String]
        public var PortBindings: [String]
        public var LogConfig: [String: String]
    }

    public struct Mount: Codable, Equatable, Sendable {
        public var `Type`: String
        public var Name: String?
        public var Source: String
        public var Destination: String
        public var RW: Bool
    }

    public struct Config: Codable, Sendable {
        public var Hostname: String
        public var User: String
        public var Env: [String]
        public var Cmd: [String]
        public var Entrypoint: [String]
        public var Image: String
        public var WorkingDir: String
        /// `-t`, `-i`, and whether the first attach's end of input closes stdin (`run -i`).
        public var Tty: Bool
        public var OpenStdin: Bool
        public var StdinOnce: Bool
        /// The check the container runs (`--health-*` over the image's
        /// HEALTHCHECK, defaults filled in; times in nanoseconds), `["NONE"]`
        /// with `--no-healthcheck`; absent without one.
        public var Healthcheck: HealthConfig?
    }

    public struct NetworkSettings: Codable, Sendable {
        public var IPAddress: String
        public var Gateway: String
        /// `80/tcp` -> `0.0.0.0:8080`.
        public var Ports: [String: String]
    }

    public var Id: String
    public var Name: String
    public var Created: String
    public var Path: String
    public var Args: [String]
    public var Image: String
    public var State: State
    public var RestartCount: Int
    public var HostConfig: HostConfig
    public var Mounts: [Mount]
    public var Config: Config
    public var NetworkSettings: NetworkSettings
    public var LogPath: String
}

/// `POST /v1/containers/{id}/exec`: runs to completion.
public struct ContainerExecRequest: Codable, Sendable {
    public var command: [String]
    public var environment: [String]?
    public var user: String?
    public var workingDirectory: String?
    /// `-t`: a pseudo-terminal (only on the streaming form, an upgrade to
    /// `tcp`; see ``ContainerStreamFrame``).
    public var tty: Bool?
    /// `-i` on the streaming form: stdin comes from the client's frames.
    public var interactive: Bool?
    /// With `-t`: the terminal's `[rows, columns]` at start.
    public var consoleSize: [Int]?
    /// `-i` on the run-to-completion form: base64 of what the client read
    /// from its stdin (to end of file), written to the process's stdin.
    public var standardInput: String?
    /// `exec -d`: answer 204 once the process runs; its output is
    /// discarded (as Docker's) and its exit is not kept.
    public var detach: Bool?

    public init(command: [String]) { self.command = command }
}

public struct ContainerExecReply: Codable, Sendable {
    public var exitCode: Int32
    /// Base64: the bytes as the process wrote them.
    public var standardOutput: String
    public var standardError: String
}

/// `POST /v1/containers/{id}/wait`: one JSON line once the container has exited.
public struct ContainerWaitReply: Codable, Sendable {
    public var statusCode: Int32
    public var oomKilled: Bool
    public var error: String?
}

/// `POST /v1/containers/run`: the last line of the stream, how the run ended.
public struct ContainerRunEnd: Codable, Sendable {
    /// The exit, as `wait` answers it; nil when the container did not start.
    public var exit: ContainerWaitReply?
    /// Why it did not start (the API error's message and code, as
    /// `POST /v1/containers/{id}/start` would have answered).
    public var startError: String?
    public var startErrorCode: String?
}

/// `GET /v1/containers/{id}/top`.
public struct ContainerTopReply: Codable, Sendable {
    public var titles: [String]
    public var processes: [[String]]
}

/// `GET /v1/containers/{id}/stats`: one sample of the cgroup's counters.
public struct ContainerStatsView: Codable, Sendable {
    public var id: String
    public var name: String
    /// Wall clock of the sample, milliseconds since the epoch (CPU % needs two).
    public var readAtMilliseconds: Int64
    public var cpuUsageMicroseconds: UInt64?
    public var memoryUsageBytes: UInt64?
    /// nil: no limit.
    public var memoryLimitBytes: Int64?
    public var pidsCurrent: UInt64?
    public var pidsLimit: Int?
}

/// `POST /v1/volumes`.
public struct VolumeCreateRequest: Codable, Sendable {
    /// nil: a random 64-hex name.
    public var name: String?
    public var labels: [String: String]?

    public init(name: String? = nil) { self.name = name }
}

/// A named volume (`shoal volume ls|inspect`).
public struct VolumeView: Codable, Sendable, Equatable {
    public var name: String
    public var driver: String
    /// The host directory containers see.
    public var mountpoint: String
    /// RFC 3339.
    public var createdAt: String
    public var labels: [String: String]
    /// Created by `-v /path`: removed by `rm -v` and `--rm`.
    public var anonymous: Bool
    /// Ids of the containers that mount it.
    public var usedBy: [String]
}

/// `GET /v1/containers/{id}/changes`: one path the container's writable
/// layer added (A), changed (C) or deleted (D), as `docker diff` lists them.
public struct ContainerChange: Codable, Sendable {
    public var kind: String
    public var path: String
}

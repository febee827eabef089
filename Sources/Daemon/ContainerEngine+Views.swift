import Agent
import Foundation
import Images
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// What `ps`, `inspect`, `top`, `stats` and `port` show.
extension ContainerEngine {
    func summary(_ record: Record) -> ContainerSummary? {
        guard let state = runtime.container(record.id)?.state else { return nil }
        return Self.summary(state, id: record.id, name: record.name, image: record.image,
                            command: record.entrypoint + record.cmd, createdAt: record.createdAt)
    }

    /// A container the node's agent runs for a service task (it shares this runtime).
    func summary(task: TaskContainer) -> ContainerSummary? {
        guard let state = runtime.container(task.containerID)?.state else { return nil }
        return Self.summary(state, id: task.containerID, name: task.name, image: task.task.template.image,
                            command: state.spec.command, createdAt: state.createdAt, labels: task.labels)
    }

    private static func summary(_ state: ContainerState, id: String, name: String, image: String, command: [String], createdAt: Date,
                                labels: [String: String]? = nil) -> ContainerSummary {
        ContainerSummary(
            id: id, name: name, image: image, command: command.joined(separator: " "),
            createdAt: timestamp(createdAt), state: state.status.rawValue, status: statusText(state, now: Date()),
            exitCode: state.status == .exited ? state.exitStatus?.code : nil,
            ports: portTexts(state), labels: labels)
    }

    /// Docker's STATUS column: `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`.
    static func statusText(_ state: ContainerState, now: Date) -> String {
        switch state.status {
        case .created: return "Created"
        case .running: return "Up " + duration(now.timeIntervalSince(state.startedAt ?? now)) + (state.health.map { " (\($0.status.rawValue))" } ?? "")
        case .paused: return "Up " + duration(now.timeIntervalSince(state.startedAt ?? now)) + " (Paused)"
        case .exited:
            let code = state.exitStatus?.code ?? -1
            return "Exited (\(code)) " + duration(now.timeIntervalSince(state.finishedAt ?? now)) + " ago"
        }
    }

    static func duration(_ seconds: TimeInterval) -> String {
        let whole = Int(max(0, seconds))
        switch whole {
        case 0: return "Less than a second"
        case 1: return "1 second"
        case 2..<60: return "\(whole) seconds"
        case 60..<120: return "About a minute"
        case 120..<3600: return "\(whole / 60) minutes"
        case 3600..<7200: return "About an hour"
        case 7200..<172_800: return "\(whole / 3600) hours"
        default: return "\(whole / 86_400) days"
        }
    }

    /// `0.0.0.0:8080->80/tcp` for each port bound while the container runs;
    /// none otherwise, as Docker shows them: nothing is bound before a
    /// start, and a stopped container's ports are closed (and a requested
    /// `-p 80` would only say host port 0).
    static func portTexts(_ state: ContainerState) -> [String] {
        guard state.status.hasProcess, let bound = state.network?.ports else { return [] }
        return bound.map { "\($0.hostAddress):\($0.hostPort)->\($0.containerPort)/\($0.transport.rawValue)" }
    }

    /// RFC 3339 with fractional seconds, UTC (Docker's zero time for never).
    static func timestamp(_ date: Date?) -> String {
        guard let date else { return "0001-01-01T00:00:00Z" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    func inspect(_ record: Record) throws -> ContainerInspectView {
        let container = try self.container(record)
        let state = container.state
        let spec = state.spec
        func time(_ date: Date?) -> String { Self.timestamp(date) }
        let running = state.status.hasProcess
        let command = spec.command
        let ports = Dictionary(Self.portTexts(state).compactMap { text -> (String, String)? in
            let parts = text.components(separatedBy: "->")
            return parts.count == 2 ? (parts[1], parts[0]) : nil
        }, uniquingKeysWith: { first, _ in first })
        return ContainerInspectView(
            Id: record.id, Name: "/" + record.name, Created: time(record.createdAt),
            Path: command.first ?? "", Args: Array(command.dropFirst()), Image: record.image,
            State: .init(Status: state.status.rawValue, Running: running, Paused: state.status == .paused, Restarting: false, OOMKilled: state.oomKilled,
                         Dead: false, Pid: running ? state.pid ?? 0 : 0, ExitCode: state.status == .exited ? state.exitStatus?.code ?? -1 : 0,
                         Error: state.startError ?? "", StartedAt: time(state.startedAt), FinishedAt: time(state.finishedAt),
                         Health: state.health.map { health in
                             .init(Status: health.status.rawValue, FailingStreak: health.failingStreak,
                                   Log: health.log.map { .init(Start: time($0.start), End: time($0.end), ExitCode: $0.exitCode, Output: $0.output) })
                         }),
            RestartCount: record.restartCount,
            HostConfig: .init(AutoRemove: record.request.autoRemove ?? false,
                              RestartPolicy: .init(Name: record.restartPolicy.name.rawValue, MaximumRetryCount: record.restartPolicy.maximumRetryCount),
                              Memory: spec.limits.memoryLimitBytes ?? 0,
                              NanoCpus: (spec.limits.cpuQuotaMicroseconds ?? 0) * 1_000_000_000 / max(1, spec.limits.cpuPeriodMicroseconds),
                              PidsLimit: spec.limits.pidsLimit ?? 0, NetworkMode: spec.network.rawValue,
                              Binds: record.request.volumes ?? [], VolumesFrom: record.request.volumesFrom ?? [],
                              Links: record.request.links ?? [], PortBindings: record.request.publish ?? [],
                              LogConfig: record.request.logOptions ?? [:]),
            Mounts: record.mounts,
            Config: .init(Hostname: spec.hostname ?? "", User: spec.user ?? "", Env: spec.environment, Cmd: record.cmd,
                          Entrypoint: record.entrypoint, Image: record.image, WorkingDir: spec.workingDirectory ?? "",
                          Tty: spec.stdio?.terminal == true, OpenStdin: spec.stdio?.openStandardInput == true,
                          StdinOnce: spec.stdio?.standardInputOnce == true,
                          Healthcheck: record.request.noHealthcheck == true ? HealthConfig(test: ["NONE"]) : spec.healthCheck.map(Self.healthConfig)),
            NetworkSettings: .init(IPAddress: state.network?.address ?? "", Gateway: state.network?.gateway ?? "", Ports: ports),
            LogPath: container.logPath)
    }

    /// The container's processes (`top`): UID, PID, PPID, TIME, CMD from /proc.
    func top(_ record: Record) throws -> ContainerTopReply {
        let container = try self.container(record)
        guard container.state.status.hasProcess else {
            throw APIError(status: 409, code: "not_running", message: "container \(record.name) is not running", hint: "start it first")
        }
        let ticksPerSecond = max(1, sysconf(Int32(_SC_CLK_TCK)))
        var rows: [[String]] = []
        for pid in container.cgroup.processIDs().sorted() {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // Fields after "(comm)": state ppid ... utime(14) stime(15).
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 13 else { continue }
            let seconds = ((UInt64(fields[11]) ?? 0) + (UInt64(fields[12]) ?? 0)) / UInt64(ticksPerSecond)
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            let uid = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(separator: "\t").dropFirst().first.map(String.init) ?? "?"
            let cmdline = (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data())
                .split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
            let comm = stat[stat.index(after: stat.firstIndex(of: "(")!)..<close]
            let time = String(format: "%02d:%02d:%02d", seconds / 3600, (seconds / 60) % 60, seconds % 60)
            rows.append([uid, "\(pid)", String(fields[1]), time, cmdline.isEmpty ? "[\(comm)]" : cmdline])
        }
        return ContainerTopReply(titles: ["UID", "PID", "PPID", "TIME", "CMD"], processes: rows)
    }

    func stats(_ record: Record) throws -> ContainerStatsView {
        let container = try self.container(record)
        let state = container.state
        let usage = state.status.hasProcess ? container.cgroup.statistics() : CgroupStatistics()
        return ContainerStatsView(id: record.id, name: record.name, readAtMilliseconds: Int64(Date().timeIntervalSince1970 * 1000),
                                  cpuUsageMicroseconds: usage.cpuUsageMicroseconds, memoryUsageBytes: usage.memoryUsageBytes,
                                  memoryLimitBytes: state.spec.limits.memoryLimitBytes, pidsCurrent: usage.pidsCurrent,
                                  pidsLimit: state.spec.limits.pidsLimit)
    }
}

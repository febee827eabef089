import Foundation

/// Docker's HEALTHCHECK (`--health-cmd`, `--health-interval`,
/// `--health-timeout`, `--health-retries`, `--health-start-period`): a
/// command run inside the container (as `exec`) every interval; exit 0 is
/// healthy. Times in milliseconds so the JSON stays plain numbers.
public struct HealthCheck: Codable, Equatable, Sendable {
    /// argv run in the container; `["sh", "-c", CMD]` is Docker's CMD-SHELL.
    public var command: [String]
    /// Between the end of one probe and the start of the next (and from
    /// the start to the first probe).
    public var intervalMilliseconds: Int
    /// A probe running longer is killed and counts as a failure.
    public var timeoutMilliseconds: Int
    /// Consecutive failures that make the container unhealthy.
    public var retries: Int
    /// Failures in this first stretch after the start do not count (a
    /// success ends it early, as in Docker).
    public var startPeriodMilliseconds: Int

    /// Docker's defaults: 30 s interval and timeout, 3 retries, no start period.
    public init(command: [String], intervalMilliseconds: Int = 30_000, timeoutMilliseconds: Int = 30_000,
                retries: Int = 3, startPeriodMilliseconds: Int = 0) {
        self.command = command
        self.intervalMilliseconds = intervalMilliseconds
        self.timeoutMilliseconds = timeoutMilliseconds
        self.retries = retries
        self.startPeriodMilliseconds = startPeriodMilliseconds
    }

    /// Why this check cannot run, or nil.
    var problem: String? {
        if command.first?.isEmpty ?? true { return "health check needs a command" }
        if intervalMilliseconds < 1 || timeoutMilliseconds < 1 { return "health check interval and timeout must be at least 1 ms" }
        if retries < 1 { return "health check retries must be at least 1" }
        if startPeriodMilliseconds < 0 { return "health check start period cannot be negative" }
        return nil
    }
}

/// `State.Health.Status`.
public enum HealthStatus: String, Codable, Sendable {
    /// No verdict yet: no success and fewer than `retries` counted failures.
    case starting
    case healthy
    case unhealthy
}

/// Docker's `State.Health`: the verdict, the current run of failures and
/// the last results, oldest first.
public struct HealthState: Codable, Equatable, Sendable {
    public var status: HealthStatus
    public var failingStreak: Int
    public var log: [HealthProbeResult]

    /// Results kept (Docker keeps 5).
    public static let maxLogEntries = 5

    public init(status: HealthStatus = .starting, failingStreak: Int = 0, log: [HealthProbeResult] = []) {
        self.status = status
        self.failingStreak = failingStreak
        self.log = log
    }

    /// Applies one probe result. `inStartPeriod`: the container started less
    /// than the start period ago, so a failure does not count.
    public mutating func record(_ result: HealthProbeResult, retries: Int, inStartPeriod: Bool) {
        log.append(result)
        if log.count > Self.maxLogEntries { log.removeFirst(log.count - Self.maxLogEntries) }
        if result.exitCode == 0 {
            status = .healthy
            failingStreak = 0
        } else if !inStartPeriod || status != .starting {
            // The start period only spares a container that has not yet
            // passed a check (Docker): once healthy, failures count.
            failingStreak += 1
            if failingStreak >= retries { status = .unhealthy }
        }
    }
}

/// One probe: when it ran, its exit code (-1: it could not run or timed
/// out) and the start of its output.
public struct HealthProbeResult: Codable, Equatable, Sendable {
    public var start: Date
    public var end: Date
    public var exitCode: Int32
    public var output: String

    /// Output kept per result (Docker keeps 4 KiB).
    public static let maxOutputBytes = 4096

    public init(start: Date, end: Date, exitCode: Int32, output: String) {
        self.start = start
        self.end = end
        self.exitCode = exitCode
        self.output = String(decoding: output.utf8.prefix(Self.maxOutputBytes), as: UTF8.self)
    }
}

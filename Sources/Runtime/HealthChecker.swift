import Foundation

/// Runs one container's ``HealthCheck`` on its own thread (the runtime's
/// I/O shell): waits the interval, runs the command through
/// ``ContainerRuntime/exec(_:_:)`` with the timeout, and records the result
/// in the container's ``ContainerState/health``. Probes are skipped while
/// the container is paused; the checker ends when the container stops
/// running or ``stop()`` is called.
final class HealthChecker: @unchecked Sendable {
    private let check: HealthCheck
    private let container: Container
    private weak var runtime: ContainerRuntime?
    private let stopped = DispatchSemaphore(value: 0)

    init(check: HealthCheck, container: Container, runtime: ContainerRuntime) {
        self.check = check
        self.container = container
        self.runtime = runtime
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "shoal-health-" + container.id
        thread.start()
    }

    /// Ends the loop without waiting (a running probe finishes first, its
    /// result dropped once the container has exited).
    func stop() {
        stopped.signal()
    }

    private func run() {
        let interval = DispatchTimeInterval.milliseconds(check.intervalMilliseconds)
        while stopped.wait(timeout: .now() + interval) == .timedOut {
            let state = container.state
            if !state.status.hasProcess { return }
            if state.status == .paused { continue }
            guard let runtime else { return }
            let result = probe(runtime)
            let startedAt = state.startedAt ?? Date.distantPast
            let inStartPeriod = result.start.timeIntervalSince(startedAt) * 1000 < Double(check.startPeriodMilliseconds)
            container.update { state in
                guard state.status.hasProcess else { return }
                var health = state.health ?? HealthState()
                health.record(result, retries: check.retries, inStartPeriod: inStartPeriod)
                state.health = health
            }
        }
    }

    private func probe(_ runtime: ContainerRuntime) -> HealthProbeResult {
        let start = Date()
        let exec = ExecSpec(command: check.command, timeout: .milliseconds(check.timeoutMilliseconds))
        do {
            let result = try runtime.exec(container.id, exec)
            if result.timedOut {
                return HealthProbeResult(start: start, end: Date(), exitCode: -1,
                                         output: "health check exceeded timeout (\(check.timeoutMilliseconds) ms)")
            }
            return HealthProbeResult(start: start, end: Date(), exitCode: result.status.code,
                                     output: result.output + result.errorOutput)
        } catch {
            return HealthProbeResult(start: start, end: Date(), exitCode: -1, output: "\(error)")
        }
    }
}

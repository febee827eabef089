import Posix
import Foundation

extension ContainerRuntime {
    /// How long the freezer may take to stop or restart every task.
    static let freezerTimeout: Duration = .seconds(10)

    /// Freezes every process of a running container (cgroup v1 freezer or
    /// v2 cgroup.freeze): they stay in memory but get no CPU until
    /// ``unpause(_:)``. Exec is refused while paused; stop and kill thaw it
    /// after signalling.
    public func pause(_ id: String) throws {
        let container = try lookup(id)
        let status = container.state.status
        guard status == .running else { throw RuntimeError.invalidState(id: id, state: status, operation: "pause") }
        do {
            try container.cgroup.setFrozen(true, timeout: Self.freezerTimeout)
        } catch {
            try? container.cgroup.setFrozen(false, timeout: Self.freezerTimeout)
            throw RuntimeError.freezerFailed(id: id, error)
        }
        container.update { state in
            if state.status == .running { state.status = .paused }
        }
    }

    /// Thaws a paused container.
    public func unpause(_ id: String) throws {
        let container = try lookup(id)
        let status = container.state.status
        guard status == .paused else { throw RuntimeError.invalidState(id: id, state: status, operation: "unpause") }
        try thaw(container)
    }

    /// Thaws the cgroup and records the container as running (also after
    /// a signal to a paused container, so that the signal is delivered).
    func thaw(_ container: Container) throws {
        do {
            try container.cgroup.setFrozen(false, timeout: Self.freezerTimeout)
        } catch {
            throw RuntimeError.freezerFailed(id: container.id, error)
        }
        container.update { state in
            if state.status == .paused { state.status = .running }
        }
    }
}

/// `--restart`: whether the daemon starts a container again after it exits.
struct RestartPolicy: Codable, Equatable, Sendable {
    enum Name: String, Codable, Sendable {
        case no
        case always
        case unlessStopped = "unless-stopped"
        case onFailure = "on-failure"
    }

    var name: Name
    /// on-failure only; 0: no limit.
    var maximumRetryCount: Int

    /// Whether an exit with `exitCode` is followed by a start. A container the
    /// user stopped (`stop`, `kill` through `stop`) stays stopped under every
    /// policy until started again, as with docker.
    func restarts(exitCode: Int32, restartCount: Int, stoppedByUser: Bool) -> Bool {
        guard !stoppedByUser else { return false }
        switch name {
        case .no: return false
        case .always, .unlessStopped: return true
        case .onFailure: return exitCode != 0 && (maximumRetryCount == 0 || restartCount < maximumRetryCount)
        }
    }

    /// Docker's back-off between restarts: 100 ms doubling, at most a minute.
    static func delayMilliseconds(restartCount: Int) -> Int {
        min(60_000, 100 << min(restartCount, 10))
    }
}

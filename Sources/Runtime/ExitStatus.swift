/// How a container's (or exec'd) process ended.
public enum ExitStatus: Codable, Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    /// Nobody recorded it: the process ended while no runtime watched and
    /// there was no shoal-monitor (or it died first); the kernel gives a
    /// status only to the parent.
    case unknown

    /// Docker's convention: 128 + signal for a signal death.
    public var code: Int32 {
        switch self {
        case .exited(let code): return code
        case .signaled(let signal): return 128 + signal
        case .unknown: return -1
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): return "exited with code \(code)"
        case .signaled(let signal): return "killed by signal \(signal)"
        case .unknown: return "exited (status unknown: it ended unwatched)"
        }
    }
}

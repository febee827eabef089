import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer
import Foundation

/// How an exec's stdio is connected.
public enum ExecStreams: Sendable {
    /// stdin /dev/null; stdout and stderr pipes.
    case none
    /// As `none`, with a pipe to stdin (`exec -i`).
    case standardInput
    /// A pseudo-terminal as stdin, stdout and stderr (`exec -t`, `-it`).
    case terminal
    /// stdin, stdout and stderr /dev/null (`exec -d`: Docker discards a
    /// detached exec's output).
    case detached
}

/// What ``ContainerRuntime/launchExec(_:_:streams:)`` started: the pid and
/// our ends of its streams (-1 when absent), all in `descriptors`.
struct LaunchedExec {
    var pid: Int32 = -1
    var standardInput: Int32 = -1
    var standardOutput: Int32 = -1
    var standardError: Int32 = -1
    var terminal: Int32 = -1
    /// Ours until the master arrives on it (closed by launchExec).
    var consoleSocket: Int32 = -1
    var descriptors: [Int32] = []
}

/// A process started inside a container by ``ContainerRuntime/startExec(_:_:streams:)``
/// whose streams the caller drives. Owns its descriptors; `wait()` reaps it
/// once, `close()` releases the descriptors.
public final class ExecProcess: @unchecked Sendable {
    public let pid: Int32
    /// Write end of its stdin pipe (`.standardInput`), else -1.
    public let standardInput: Int32
    /// Read ends of its stdout and stderr pipes, else -1.
    public let standardOutput: Int32
    public let standardError: Int32
    /// The pty master (`.terminal`): read output, write input, resize; else -1.
    public let terminal: Int32
    private let lock = NSLock()
    private var open: [Int32]
    private var status: ExitStatus?

    init(_ launched: LaunchedExec) {
        pid = launched.pid
        standardInput = launched.standardInput
        standardOutput = launched.standardOutput
        standardError = launched.standardError
        terminal = launched.terminal
        open = launched.descriptors
    }

    deinit {
        open.forEach(Syscall.close)
    }

    /// Blocks until the process exits; later calls return the same status.
    public func wait() -> ExitStatus {
        lock.lock()
        defer { lock.unlock() }
        if let status { return status }
        let reaped = ContainerRuntime.reap(pid)
        status = reaped
        return reaped
    }

    /// Sets the terminal's window size (the process gets SIGWINCH).
    public func resize(_ size: TerminalSize) {
        guard terminal >= 0 else { return }
        _ = shoal_set_window_size(terminal, size.rows, size.columns)
    }

    /// Writes to its terminal, or to its stdin pipe (nothing without either,
    /// or once stdin was closed); blocks while the process does not read.
    public func writeInput(_ bytes: [UInt8]) throws {
        let target = terminal >= 0 ? terminal : standardInput
        guard target >= 0, lock.withLock({ open.contains(target) }) else { return }
        try Syscall.writeAll(target, bytes, path: "exec stdin")
    }

    /// Closes one of the descriptors early (stdin: end of input).
    public func close(_ descriptor: Int32) {
        lock.withLock {
            guard let index = open.firstIndex(of: descriptor) else { return }
            open.remove(at: index)
            Syscall.close(descriptor)
        }
    }

    /// Sends `signal` to the process unless it was reaped already.
    public func kill(_ signal: Int32) {
        lock.withLock {
            if status == nil { _ = Glibc.kill(pid, signal) }
        }
    }
}

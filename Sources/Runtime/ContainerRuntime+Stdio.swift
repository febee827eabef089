import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer
import Foundation

/// The descriptors of an interactive container's start: what its monitor
/// keeps (``ShoalMonitorStreams``), what its init gets, and our copies of
/// both, closed once the spawn call returned.
struct MonitoredStdio {
    var streams = ShoalMonitorStreams(input_fifo: -1, stdin_pipe: -1, console_socket: -1, output_fifo: -1)
    /// The init's stdin (`-i` without `-t`): the read end of the monitor's pipe.
    var childStandardInput: Int32 = -1
    /// The init's end of the socket its pty master is sent on (`-t`).
    var childConsoleSocket: Int32 = -1
    var descriptors: [Int32] = []

    func apply(to plan: SpawnPlan, windowSize: TerminalSize?) {
        if childStandardInput >= 0 { plan.raw.stdin_fd = childStandardInput }
        plan.raw.console_socket_fd = childConsoleSocket
        plan.raw.window_rows = windowSize?.rows ?? 0
        plan.raw.window_columns = windowSize?.columns ?? 0
    }
}

extension ContainerRuntime {
    /// The input FIFO of a container's monitor (`-i`, `-t`).
    static func inputFifoPath(directory: String) -> String { directory + "/input.fifo" }

    /// Sets up `-i`/`-t` for a start: the input FIFO the monitor reads
    /// (opened read-write, so it sees no end of file while no runtime
    /// writes), the stdin pipe or the console socket pair, and the stdout FIFO
    /// end (`outputFifo`) the monitor copies the terminal's output to. Nothing
    /// to do for a container without ``ContainerSpec/stdio``.
    func prepareStdio(_ container: Container, _ options: StdioOptions?, outputFifo: Int32) throws -> MonitoredStdio {
        var stdio = MonitoredStdio()
        guard let options, options.openStandardInput || options.terminal else { return stdio }
        guard configuration.monitorExecutable != nil else {
            throw RuntimeError.invalidSpec("-i and -t need the shoal-monitor program beside shoal, which keeps the container's streams: build it (swift build --product shoal-monitor)")
        }
        do {
            let path = Self.inputFifoPath(directory: container.directory)
            let input = try Self.hostCall { () throws(SystemError) -> Int32 in
                unlink(path)
                try Syscall.run("mkfifo", path: path) { mkfifo(path, 0o600) }
                return try Syscall.open(path, O_RDWR)
            }
            stdio.descriptors.append(input)
            stdio.streams.input_fifo = input
            if options.terminal {
                var pair: [Int32] = [-1, -1]
                try Self.hostCall { () throws(SystemError) in
                    try Syscall.run("socketpair", path: "console socket") { shoal_socketpair_cloexec(&pair) }
                }
                stdio.descriptors += pair
                stdio.childConsoleSocket = pair[0]
                stdio.streams.console_socket = pair[1]
                stdio.streams.output_fifo = outputFifo
            } else {
                let pipe = try Self.hostCall(Syscall.pipe)
                stdio.descriptors += [pipe.read, pipe.write]
                stdio.childStandardInput = pipe.read
                stdio.streams.stdin_pipe = pipe.write
            }
            return stdio
        } catch {
            stdio.descriptors.forEach(Syscall.close)
            throw error
        }
    }

    /// Writes `bytes` to the stdin of a container started with `-i` (or to
    /// its terminal with `-t`). Blocks while the container does not read.
    public func writeInput(_ id: String, _ bytes: [UInt8]) throws {
        let container = try interactiveContainer(id, operation: "write to the stdin of")
        try container.input.send(data: bytes)
    }

    /// Ends the stdin of a container started with `-i` without `-t` (a
    /// terminal has no end of input of its own: send its EOF character).
    public func closeInput(_ id: String) throws {
        let container = try interactiveContainer(id, operation: "close the stdin of")
        try container.input.sendEnd()
    }

    /// Sets the window size of a `-t` container's terminal (its foreground
    /// process group gets SIGWINCH).
    public func resizeTerminal(_ id: String, _ size: TerminalSize) throws {
        let container = try interactiveContainer(id, operation: "resize the terminal of")
        guard container.state.spec.stdio?.terminal == true else {
            throw RuntimeError.invalidSpec("container \(id) has no terminal: start it with -t to resize one")
        }
        try container.input.send(windowSize: size)
    }

    private func interactiveContainer(_ id: String, operation: String) throws -> Container {
        let container = try lookup(id)
        let state = container.state
        guard let stdio = state.spec.stdio, stdio.openStandardInput || stdio.terminal else {
            throw RuntimeError.invalidSpec("container \(id) was started without -i or -t: its stdin is /dev/null")
        }
        guard state.status == .running || state.status == .paused else {
            throw RuntimeError.invalidState(id: id, state: state.status, operation: operation)
        }
        return container
    }
}

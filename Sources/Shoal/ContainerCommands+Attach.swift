import Daemon
import Foundation
import HTTP
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// `run -i/-t`, `exec -i/-t` and `attach`: the commands that hold an
/// attached stream (``ContainerStreamCommand``).
extension ContainerCommands {
    /// `-it` needs a terminal to put in raw mode, as docker says.
    static func checkInputTerminal(_ flags: ContainerFlags) throws {
        if flags.has("--interactive"), flags.has("--tty"), isatty(STDIN_FILENO) == 0 {
            throw ClusterCommands.Failure(description: "the input device is not a TTY: drop -t to pipe input, or run from a terminal")
        }
    }

    /// `run -i/-t` without `-d`, `start -a -i`: attaches to the container,
    /// starts it, and stays until it exits (its exit code) or the detach keys.
    static func runAttached(_ client: ControlClient, _ id: String, _ flags: ContainerFlags, label: String = "run") async throws -> Int32 {
        let interactive = flags.has("--interactive")
        let detachKeys = try ContainerStreamCommand.parseDetachKeys(flags.value("--detach-keys"))
        let (headers, stream) = try await client.upgrade(.post, path(id, "/attach?stdin=\(interactive)"))
        let terminal = headers[ControlAPI.terminalHeader] == "true"
        if terminal, interactive, isatty(STDIN_FILENO) == 0 {
            stream.abort()
            throw ClusterCommands.Failure(description: "the input device is not a TTY: the container has a terminal; \(label) it from a terminal")
        }
        let command = ContainerStreamCommand(stream: stream, sendsInput: interactive, terminal: terminal, detachKeys: detachKeys)
        let proxy = !terminal && flags.isOn(byDefault: "--sig-proxy") ? SignalProxy(client: client, container: id) : nil
        defer { proxy?.stop() }
        let outcome: ContainerStreamCommand.Outcome
        do {
            outcome = try await command.run(ready: { try await startChecked(client, id) })
        } catch let error as APIError {
            stream.abort()
            FileHandle.standardError.write(Data("shoal container \(label): \(error.message)\n".utf8))
            return exitCode(forStartError: error)
        }
        return finish(outcome, label: label)
    }

    /// `exec -i/-t`: the process's streams over an upgraded exec request.
    static func streamExec(_ client: ControlClient, _ container: String, _ request: ContainerExecRequest, _ flags: ContainerFlags) async throws -> Int32 {
        try checkInputTerminal(flags)
        var request = request
        request.interactive = flags.has("--interactive") ? true : nil
        request.tty = flags.has("--tty") ? true : nil
        request.consoleSize = flags.has("--tty") ? TerminalMode.size().map { [Int($0.rows), Int($0.columns)] } : nil
        let detachKeys = try ContainerStreamCommand.parseDetachKeys(flags.value("--detach-keys"))
        let (_, stream) = try await client.upgrade(.post, path(container, "/exec"), json: request)
        let command = ContainerStreamCommand(stream: stream, sendsInput: flags.has("--interactive"), terminal: flags.has("--tty"), detachKeys: detachKeys)
        return finish(try await command.run(), label: "exec")
    }

    /// `attach C`: the running container's output from now on, our stdin
    /// into it when it was started with `-i` (unless `--no-stdin`).
    static func attach(_ flags: ContainerFlags) async throws -> Int32 {
        guard flags.positional.count == 1 else {
            throw ClusterCommands.Failure(description: "usage: shoal container attach [--no-stdin] [--detach-keys KEYS] [--sig-proxy=false] CONTAINER")
        }
        let detachKeys = try ContainerStreamCommand.parseDetachKeys(flags.value("--detach-keys"))
        let client = try client(flags)
        defer { Task { await client.shutdown() } }
        // Proxying from before the upgrade: a signal once attached is never lost.
        var proxy = flags.isOn(byDefault: "--sig-proxy") ? SignalProxy(client: client, container: flags.positional[0]) : nil
        defer { proxy?.stop() }
        let (headers, stream) = try await client.upgrade(.post, path(flags.positional[0], "/attach?stdin=\(!flags.has("--no-stdin"))"))
        let terminal = headers[ControlAPI.terminalHeader] == "true"
        let sendsInput = headers[ControlAPI.standardInputHeader] == "true"
        if terminal, sendsInput, isatty(STDIN_FILENO) == 0 {
            stream.abort()
            throw ClusterCommands.Failure(description: "the input device is not a TTY: attach with --no-stdin, or from a terminal")
        }
        let command = ContainerStreamCommand(stream: stream, sendsInput: sendsInput, terminal: terminal, detachKeys: detachKeys)
        if terminal {
            proxy?.stop()  // the keys reach the process through its terminal
            proxy = nil
        }
        return finish(try await command.run(), label: "attach")
    }

    /// The exit code a stream's end gives the command: the process's, 0 on
    /// detach (the container runs on), 125 when the daemon went away.
    static func finish(_ outcome: ContainerStreamCommand.Outcome, label: String) -> Int32 {
        switch outcome {
        case .exited(let exit):
            if let error = exit.error, !error.isEmpty { FileHandle.standardError.write(Data("shoal container \(label): \(error)\n".utf8)) }
            return exit.exitCode < 0 ? 125 : exit.exitCode
        case .detached:
            FileHandle.standardError.write(Data("\nread escape sequence\n".utf8))
            return 0
        case .lost:
            FileHandle.standardError.write(Data("shoal container \(label): the daemon closed the stream before the exit (stopped or restarted)\n".utf8))
            return 125
        }
    }
}

import Daemon
import Foundation
import HTTP
#if canImport(Glibc)
import Glibc
#endif

/// `shoal container ...`: the single-host commands, as `docker container`,
/// against the daemon's local API (`/v1/containers`).
enum ContainerCommands {
    static let usage = """
        shoal container run [-d] [-i] [-t] [--detach-keys ctrl-p,ctrl-q] [--sig-proxy=false] [--rm] [--name N] [-h HOST] [-e K=V]... [--env-file F]... [-v NAME:/path[:ro]]... [--volumes-from C]...
                            [-w DIR] [-u USER] [--entrypoint CMD] [--memory 64m] [--cpus 1.5] [--pids-limit N] [--restart POLICY] [--stop-signal SIG] [--stop-timeout S]
                            [--network none|host|bridge] [-p [IP:]HOST:CTR]... [-P] [--link C[:ALIAS]]... [--log-opt max-size=10m]
                            [--health-cmd CMD [--health-interval 30s] [--health-timeout 30s] [--health-retries 3] [--health-start-period 0s]] IMAGE [CMD...]
        shoal container create ... (as run, without -d) | start [-a] [-i] [--sig-proxy=false] C... | stop [-t SECONDS] C... | restart [-t SECONDS] C... | kill [-s SIGNAL] C...
        shoal container pause C... | unpause C... | rm [-f] [-v] C... | ps [-a] [-q] [-f status=exited|label=K[=V]] | logs [-f] [--tail N] [-t] C | exec [-d] [-i] [-t] [-e K=V] [-u U] [-w DIR] C CMD...
        shoal container attach [--no-stdin] [--detach-keys KEYS] C   (detach from -it with Ctrl-P Ctrl-Q; the container runs on)
        shoal container inspect [-f '{{.State.Pid}}'] C... | top C | stats [--no-stream] [C...] | port C [PORT] | diff C | export [-o FILE] C
        shoal container cp [-a] [-L] C:SRC DEST|- | cp [-a] [-L] SRC|- C:DEST
        shoal container commit [-m MESSAGE] [-a AUTHOR] [-c 'INSTRUCTION']... [--pause=false] C [REPOSITORY[:TAG]]
          (--format json on every command: names as a JSON array, logs as the stored JSON lines, exec's output as text)
        """

    static let subcommands: Set<String> = [
        "run", "create", "start", "stop", "restart", "kill", "rm", "ps", "ls", "list", "logs", "exec", "inspect", "top", "stats", "port",
        "pause", "unpause", "diff", "cp", "export", "commit", "attach", "wait",
    ]

    /// Waiting for a stop with `-t N` takes up to N seconds more than a call.
    static let requestTimeout: Duration = .seconds(120)

    static let runFlags: [ContainerFlags.Definition] = [
        .flag("--detach", "-d"), .flag("--interactive", "-i"), .flag("--tty", "-t"), .flag("--rm"), .flag("--publish-all", "-P"),
        .option("--name"), .option("--hostname", "-h"), .option("--env", "-e"), .option("--env-file"), .option("--volume", "-v"),
        .option("--volumes-from"), .option("--workdir", "-w"), .option("--user", "-u"), .option("--entrypoint"), .option("--memory", "-m"),
        .option("--cpus"), .option("--pids-limit"), .option("--restart"), .option("--network", "--net"), .option("--publish", "-p"),
        .option("--link"), .option("--log-opt"), .option("--format"), .option("--detach-keys"),
        .option("--health-cmd"), .option("--health-interval"), .option("--health-timeout"), .option("--health-retries"),
        .option("--health-start-period"), .flag("--no-healthcheck"), .flag("--sig-proxy"),
        .option("--stop-signal"), .option("--stop-timeout"),
    ]

    static func run(_ rest: [String]) -> Int32 {
        if rest.first == "run", let code = runInForeground(Array(rest.dropFirst())) {
            // An error: all that is left is to leave, stdio flushed, without
            // exit()'s handlers and static destructors (~45 us).
            ClusterCommands.flushOutput()
            _exit(code)
        }
        return runSubcommand(of: "container", rest, usage: usage) { subcommand, arguments in
            try await dispatch(subcommand, arguments)
        }
    }

    /// The shared frame of `shoal container` and `shoal volume`: usage on
    /// help, the body run to completion, and every error printed the same way
    /// (exit 2 for what is not built yet, 1 otherwise).
    static func runSubcommand(of group: String, _ rest: [String], usage: String,
                              _ body: @escaping @Sendable (String, [String]) async throws -> Int32) -> Int32 {
        guard let subcommand = rest.first, subcommand != "--help", subcommand != "help" else {
            print("usage:\n" + usage)
            return rest.isEmpty ? 2 : 0
        }
        let label = "\(group) \(subcommand)"
        return ClusterCommands.blocking {
            do {
                return try await body(subcommand, Array(rest.dropFirst()))
            } catch {
                return report(error, label)
            }
        }
    }

    /// Prints `error` as every `shoal container`/`volume` command does; returns
    /// the exit code (2 for what is not built yet, 1 otherwise).
    static func report(_ error: any Error, _ label: String) -> Int32 {
        switch error {
        case let error as APIError: return fail(label, error.message, hint: error.hint, code: error.code == "not_implemented" ? 2 : 1)
        case let error as GoTemplate.Failure: return fail(label, error.description)
        default: return fail(label, ClusterCommands.describe(error))
        }
    }

    /// Prints `shoal GROUP SUBCOMMAND: message` and the hint; returns `code`.
    static func fail(_ label: String, _ message: String, hint: String = "", code: Int32 = 1) -> Int32 {
        var text = "shoal \(label): \(message)"
        if !hint.isEmpty { text += "\nhint: \(hint)" }
        write(text + "\n", to: .standardError)
        return code
    }

    static func client(_ flags: ContainerFlags) throws -> ControlClient {
        let host = flags.value("--host") ?? environment("SHOAL_HOST") ?? "unix://\(DaemonSettings.defaultSocketPath)"
        return try ControlClient(host: host, tlsDirectory: flags.value("--tls-dir") ?? environment("SHOAL_TLS_DIR"),
                                 timeout: requestTimeout)
    }

    /// One environment variable. getenv, not ProcessInfo: its `environment`
    /// copies all of them into a dictionary per call, on every `run`.
    static func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    static func path(_ container: String, _ suffix: String = "") -> String {
        "/v1/containers/" + PercentEncoding.encode(container) + suffix
    }

    static func notYet(_ what: String, _ hint: String) -> APIError {
        APIError(status: 501, code: "not_implemented", message: "\(what) is not built yet", hint: hint)
    }

    /// `--format json|table` or a Go template (inspect, ps).
    static func format(_ flags: ContainerFlags) -> String? { flags.value("--format") }

    static func dispatch(_ subcommand: String, _ arguments: [String]) async throws -> Int32 {
        switch subcommand {
        case "run", "create":
            let flags = try ContainerFlags(arguments, definitions: runFlags, leadingPositionals: 1)
            return try await runOrCreate(flags, run: subcommand == "run")
        case "start":
            let flags = try ContainerFlags(arguments, definitions: [.flag("--attach", "-a"), .flag("--interactive", "-i"), .option("--detach-keys"),
                                                                     .flag("--sig-proxy"), .option("--format")])
            return try await start(flags)
        case "stop", "restart":
            let flags = try ContainerFlags(arguments, definitions: [.option("--time", "-t", "--timeout"), .option("--format")])
            let client = try client(flags)
            var query = ""
            if let time = flags.value("--time") {
                guard let seconds = Int(time), seconds >= 0 else { throw ClusterCommands.Failure(description: "-t \(time): give a number of seconds") }
                query = "?timeout=\(seconds)"
            }
            return try await forEach(flags, client: client) { try await client.perform(.post, path($0, "/\(subcommand)\(query)")) }
        case "kill":
            let flags = try ContainerFlags(arguments, definitions: [.option("--signal", "-s"), .option("--format")])
            let client = try client(flags)
            let query = flags.value("--signal").map { "?signal=" + PercentEncoding.encode($0) } ?? ""
            return try await forEach(flags, client: client) { try await client.perform(.post, path($0, "/kill\(query)")) }
        case "rm":
            let flags = try ContainerFlags(arguments, definitions: [.flag("--force", "-f"), .flag("--volumes", "-v"), .option("--format")])
            let client = try client(flags)
            let query = "?force=\(flags.has("--force"))&volumes=\(flags.has("--volumes"))"
            return try await forEach(flags, client: client) { try await client.perform(.delete, path($0, query)) }
        case "ps", "ls", "list":
            let flags = try ContainerFlags(arguments, definitions: [.flag("--all", "-a"), .flag("--quiet", "-q"), .flag("--no-trunc"),
                                                                    .option("--filter", "-f"), .option("--format")])
            return try await list(flags)
        case "logs":
            let flags = try ContainerFlags(arguments, definitions: [.flag("--follow", "-f"), .flag("--timestamps", "-t"), .option("--tail", "-n"),
                                                                    .option("--format")])
            return try await logs(flags)
        case "exec":
            let flags = try ContainerFlags(arguments, definitions: [.flag("--interactive", "-i"), .flag("--tty", "-t"), .flag("--detach", "-d"),
                                                                    .option("--env", "-e"), .option("--user", "-u"), .option("--workdir", "-w"),
                                                                    .option("--detach-keys"), .option("--format")],
                                           leadingPositionals: 1)
            return try await exec(flags)
        case "inspect":
            let flags = try ContainerFlags(arguments, definitions: [.option("--format", "-f"), .flag("--size", "-s")])
            return try await inspect(flags)
        case "top":
            let flags = try ContainerFlags(arguments, definitions: [.option("--format")])
            return try await top(flags)
        case "stats":
            let flags = try ContainerFlags(arguments, definitions: [.flag("--no-stream"), .flag("--all", "-a"), .option("--format")])
            return try await ContainerStatsCommand.run(flags, client: try client(flags))
        case "port":
            let flags = try ContainerFlags(arguments, definitions: [.option("--format")])
            return try await port(flags)
        case "pause", "unpause":
            let flags = try ContainerFlags(arguments, definitions: [.option("--format")])
            let client = try client(flags)
            return try await forEach(flags, client: client) { try await client.perform(.post, path($0, "/\(subcommand)")) }
        case "diff":
            let flags = try ContainerFlags(arguments, definitions: [.option("--format")])
            return try await diff(flags)
        case "export":
            let flags = try ContainerFlags(arguments, definitions: [.option("--output", "-o")])
            return try await export(flags)
        case "commit":
            return try await ContainerCommitCommand.run(arguments)
        case "cp":
            return try await ContainerCopyCommand.run(arguments)
        case "attach":
            let flags = try ContainerFlags(arguments, definitions: [.flag("--no-stdin"), .option("--detach-keys"), .flag("--sig-proxy")])
            return try await attach(flags)
        case "wait":
            let flags = try ContainerFlags(arguments, definitions: [.option("--format")])
            let client = try client(flags)
            var replies: [ContainerWaitReply] = []
            let status = try await forEach(flags, client: client, quietSuccess: true) { container in
                let reply = try await waitLine(client, container)
                if format(flags) == "json" { replies.append(reply) } else { print(reply.statusCode) }
            }
            if format(flags) == "json" { _ = ClusterCommands.output(replies) }
            return status
        default:
            throw ClusterCommands.Failure(description: "unknown command '\(subcommand)'\nusage:\n\(usage)")
        }
    }

    /// Runs `body` for each positional container; errors are printed per
    /// container and make the exit status 1 (as docker does). Each success
    /// prints its name, or with `--format json` all of them as one array.
    static func forEach(_ flags: ContainerFlags, client: ControlClient, quietSuccess: Bool = false, _ body: (String) async throws -> Void) async throws -> Int32 {
        guard !flags.positional.isEmpty else { throw ClusterCommands.Failure(description: "give at least one container (name or id)") }
        var status: Int32 = 0
        var done: [String] = []
        defer { if format(flags) == "json", !quietSuccess { _ = ClusterCommands.output(done) } }
        for container in flags.positional {
            do {
                try await body(container)
                if format(flags) == "json" { done.append(container) } else if !quietSuccess { print(container) }
            } catch let error as APIError {
                var text = "Error: \(error.message)"
                if !error.hint.isEmpty { text += "\nhint: \(error.hint)" }
                FileHandle.standardError.write(Data((text + "\n").utf8))
                status = 1
            }
        }
        return status
    }

    // MARK: run, create, start

    static func createRequest(_ flags: ContainerFlags) throws -> ContainerCreateRequest {
        guard let image = flags.positional.first else {
            throw ClusterCommands.Failure(description: "give an image: shoal container run [OPTIONS] IMAGE [COMMAND [ARG...]]")
        }
        var request = ContainerCreateRequest(image: image)
        request.noHealthcheck = flags.has("--no-healthcheck") ? true : nil
        request.healthCommand = flags.value("--health-cmd")
        request.healthInterval = flags.value("--health-interval")
        request.healthTimeout = flags.value("--health-timeout")
        request.healthStartPeriod = flags.value("--health-start-period")
        if let retries = flags.value("--health-retries") {
            guard let value = Int(retries) else { throw ClusterCommands.Failure(description: "--health-retries \(retries): give a number") }
            request.healthRetries = value
        }
        request.name = flags.value("--name")
        request.command = flags.trailing.isEmpty ? nil : flags.trailing
        request.entrypoint = flags.value("--entrypoint")
        var environment: [String] = []
        for file in flags.all("--env-file") { environment += try envFile(file) }
        environment += flags.all("--env").map(envEntry)
        request.environment = environment.isEmpty ? nil : environment
        request.hostname = flags.value("--hostname")
        request.user = flags.value("--user")
        request.workingDirectory = flags.value("--workdir")
        request.volumes = flags.given("--volume")
        request.volumesFrom = flags.given("--volumes-from")
        request.memory = flags.value("--memory")
        if let cpus = flags.value("--cpus") {
            guard let value = Double(cpus), value.isFinite else { throw ClusterCommands.Failure(description: "--cpus \(cpus): give a number such as 0.5 or 2") }
            request.cpus = value
        }
        if let pids = flags.value("--pids-limit") {
            guard let value = Int(pids) else { throw ClusterCommands.Failure(description: "--pids-limit \(pids): give a number of processes") }
            request.pidsLimit = value
        }
        request.restart = flags.value("--restart")
        request.stopSignal = flags.value("--stop-signal")
        if let timeout = flags.value("--stop-timeout") {
            guard let seconds = Int(timeout) else { throw ClusterCommands.Failure(description: "--stop-timeout \(timeout): give a number of seconds") }
            request.stopTimeout = seconds
        }
        request.autoRemove = flags.has("--rm") ? true : nil
        request.network = flags.value("--network")
        request.publish = flags.given("--publish")
        request.publishAll = flags.has("--publish-all") ? true : nil
        request.links = flags.given("--link")
        // Only with --log-opt: a String-keyed dictionary costs a run without it
        // a scan of every protocol conformance in the binary (String: Hashable).
        if let options = flags.given("--log-opt") {
            var logOptions: [String: String] = [:]
            for option in options {
                let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw ClusterCommands.Failure(description: "--log-opt \(option): give KEY=VALUE such as max-size=10m") }
                logOptions[parts[0]] = parts[1]
            }
            request.logOptions = logOptions
        }
        request.interactive = flags.has("--interactive") ? true : nil
        request.tty = flags.has("--tty") ? true : nil
        request.stdinOnce = flags.has("--interactive") && !flags.has("--detach") ? true : nil
        request.consoleSize = flags.has("--tty") ? TerminalMode.size().map { [Int($0.rows), Int($0.columns)] } : nil
        return request
    }

    /// `-e NAME` takes NAME's value from this environment, as docker does.
    static func envEntry(_ text: String) -> String {
        if text.contains("=") { return text }
        return text + "=" + (ProcessInfo.processInfo.environment[text] ?? "")
    }

    static func envFile(_ path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ClusterCommands.Failure(description: "--env-file \(path): cannot read the file")
        }
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }.map(envEntry)
    }

    static func runOrCreate(_ flags: ContainerFlags, run: Bool) async throws -> Int32 {
        let request = try createRequest(flags)
        let attached = run && !flags.has("--detach") && (flags.has("--interactive") || flags.has("--tty"))
        if attached { try checkInputTerminal(flags) }
        let client = try client(flags)
        defer { Task { await client.shutdown() } }
        if run && !flags.has("--detach") && !attached {
            return try await runStreaming(client, request, proxySignals: flags.isOn(byDefault: "--sig-proxy"))
        }
        let created: ContainerCreateReply = try await client.call(.post, "/v1/containers", json: request)
        let json = format(flags) == "json"
        guard run else {
            if json { return ClusterCommands.output(created) }
            print(created.id)
            return 0
        }
        if flags.has("--detach") {
            try await startChecked(client, created.id)
            if json { return ClusterCommands.output(created) }
            print(created.id)
            return 0
        }
        return try await runAttached(client, created.id, flags)
    }

    /// `run` without -d, -i or -t, in one request (`POST /v1/containers/run`):
    /// the daemon creates and starts the container and streams its output,
    /// then how it ended (with `--rm`, once it is out of view, as docker's
    /// CLI waits). Start errors exit as docker's do (``exitCode(forStartErrorCode:)``).
    static func runStreaming(_ client: ControlClient, _ request: ContainerCreateRequest, proxySignals: Bool) async throws -> Int32 {
        let (headers, lines) = try await client.streamLines(.post, "/v1/containers/run", json: request)
        let proxy = proxySignals ? headers[ControlAPI.containerIDHeader].map { SignalProxy(client: client, container: $0) } : nil
        defer { proxy?.stop() }
        var status: Int32?
        for try await line in lines {
            status = runOutcome(line)
            if status != nil { break }
        }
        ClusterCommands.flushOutput()
        return status ?? 125
    }

    /// ``runStreaming(_:_:proxySignals:)`` for the local daemon, on this
    /// thread with blocking reads (``ControlClient/streamLinesBlocking(_:_:jsonBody:watching:onSent:onHeaders:onLine:)``):
    /// no task, executor or event-loop thread starts, which was most of
    /// what the CLI itself cost per `run`. A completed run ends the process
    /// with the container's code; an error returns its exit code; nil when
    /// the run takes the general path (-d, -i, -t, a remote host), which
    /// parses the flags again.
    static func runInForeground(_ arguments: [String]) -> Int32? {
        do {
            let flags = try ContainerFlags(arguments, definitions: runFlags, leadingPositionals: 1)
            guard !flags.has("--detach"), !flags.has("--interactive"), !flags.has("--tty") else { return nil }
            let request = try createRequest(flags)
            let client = try client(flags)
            guard client.isLocal else { return nil }
            let proxySignals = flags.isOn(byDefault: "--sig-proxy")
            // No thread: this one forwards the signals while it waits for the daemon.
            if proxySignals { SignalProxy.forwarder.preparePipe() }
            var proxy: SignalProxy?
            defer { proxy?.stop() }
            var status: Int32?
            try client.streamLinesBlocking(.post, "/v1/containers/run", jsonBody: request.encodedJSON,
                                           watching: proxySignals ? SignalProxy.callerWatch : nil,
                                           onSent: {
                                               // While the daemon works: the first reading of its lines costs more than the rest.
                                               ControlClient.prepareRunStreamReading()
                                               _ = runOutcome(#"{"exit":{"oomKilled":false,"statusCode":0}}"#)
                                           }, onHeaders: { headers in
                guard proxySignals else { return }
                proxy = headers[ControlAPI.containerIDHeader].map { SignalProxy(client: client, container: $0, onCallerThread: true) }
            }, onLine: { line in
                status = runOutcome(line)
                return status == nil
            })
            // The process ends here, as soon as the daemon's last line is read:
            // no signal defaults restored, no client or socket torn down (the
            // kernel closes it), only stdio flushed.
            ClusterCommands.flushOutput()
            _exit(status ?? 125)
        } catch {
            return report(error, "container run")
        }
    }

    /// One line of the run stream: a log entry is printed (nil: more to
    /// come); a start error or the exit is reported and gives the code to exit with.
    static func runOutcome(_ line: String) -> Int32? {
        guard let item = ContainerRunStreamLine(line: line) else { return nil }
        if let log = item.log, let stream = item.stream {
            printLog(LogLine(log: log, stream: stream, time: item.time ?? ""), timestamps: false)
            return nil
        }
        if let error = item.startError {
            write("shoal container run: \(error)\n", to: .standardError)
            return exitCode(forStartErrorCode: item.startErrorCode ?? "")
        }
        if let exit = item.exit {
            if let error = exit.error, !error.isEmpty { write("shoal container run: \(error)\n", to: .standardError) }
            return exit.statusCode < 0 ? 125 : exit.statusCode
        }
        return nil
    }

    /// Starts the container; a start error exits as docker's does (127: not
    /// found, 126: not executable, 125: anything else).
    static func startChecked(_ client: ControlClient, _ id: String) async throws {
        try await client.perform(.post, path(id, "/start"))
    }

    static func exitCode(forStartError error: APIError) -> Int32 {
        exitCode(forStartErrorCode: error.code)
    }

    static func exitCode(forStartErrorCode code: String) -> Int32 {
        switch code {
        case "executable_not_found": return 127
        case "not_executable": return 126
        default: return 125
        }
    }

    /// `start -a`: follows the output and the exit of the next run before
    /// starting, so nothing is missed, then starts.
    static func attachAndStart(_ client: ControlClient, _ id: String, proxySignals: Bool) async throws -> Int32 {
        let exit = try await client.lines(path(id, "/wait?condition=next-exit"), method: .post)
        let output = try await client.lines(path(id, "/logs?follow=true&tail=0&condition=next-exit"))
        let proxy = proxySignals ? SignalProxy(client: client, container: id) : nil
        defer { proxy?.stop() }
        let printer = Task { try await printLogs(output, timestamps: false) }
        do {
            try await startChecked(client, id)
        } catch let error as APIError {
            printer.cancel()
            FileHandle.standardError.write(Data("shoal container run: \(error.message)\n".utf8))
            return exitCode(forStartError: error)
        }
        var status: Int32 = -1
        for try await line in exit {
            if let reply = try? JSONDecoder().decode(ContainerWaitReply.self, from: Data(line.utf8)) {
                status = reply.statusCode
                if let error = reply.error, !error.isEmpty { FileHandle.standardError.write(Data("shoal container run: \(error)\n".utf8)) }
                break
            }
        }
        _ = try? await printer.value
        ClusterCommands.flushOutput()
        return status < 0 ? 125 : status
    }

    static func waitLine(_ client: ControlClient, _ container: String) async throws -> ContainerWaitReply {
        for try await line in try await client.lines(path(container, "/wait"), method: .post) {
            if let reply = try? JSONDecoder().decode(ContainerWaitReply.self, from: Data(line.utf8)) { return reply }
        }
        throw ClusterCommands.Failure(description: "the daemon ended the wait without an exit status")
    }

    static func start(_ flags: ContainerFlags) async throws -> Int32 {
        let client = try client(flags)
        defer { Task { await client.shutdown() } }
        if flags.has("--interactive") {
            // Docker's start -i attaches stdin (and the output) before starting.
            guard flags.positional.count == 1 else { throw ClusterCommands.Failure(description: "start -i takes one container") }
            return try await runAttached(client, flags.positional[0], flags, label: "start")
        }
        if flags.has("--attach") {
            guard flags.positional.count == 1 else { throw ClusterCommands.Failure(description: "start -a takes one container") }
            return try await attachAndStart(client, flags.positional[0], proxySignals: flags.isOn(byDefault: "--sig-proxy"))
        }
        return try await forEach(flags, client: client) { try await startChecked(client, $0) }
    }

    // MARK: logs

    /// One line of the daemon's log stream, as the json-file driver stores it.
    struct LogLine: Decodable {
        var log: String
        var stream: String
        var time: String
    }

    /// `json`: each entry as the daemon stores it, one JSON object a line.
    static func printLogs(_ lines: AsyncThrowingStream<String, any Error>, timestamps: Bool, json: Bool = false) async throws {
        for try await line in lines {
            if json {
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
                continue
            }
            guard let entry = try? JSONDecoder().decode(LogLine.self, from: Data(line.utf8)) else { continue }
            printLog(entry, timestamps: timestamps)
        }
    }

    static func printLog(_ entry: LogLine, timestamps: Bool) {
        let text = timestamps ? entry.time + " " + entry.log : entry.log
        if entry.stream == "stderr" {
            ClusterCommands.flushOutput()
            write(text, to: .standardError)
        } else {
            write(text, to: .standardOutput)
        }
    }

    /// `handle.write(Data(text.utf8))` without Data's generic initializer,
    /// whose first use casts dynamically: a scan of every protocol
    /// conformance in the binary, at the first line a `run` prints.
    static func write(_ text: String, to handle: FileHandle) {
        var text = text
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
            handle.write(Data(bytes: base, count: bytes.count))
        }
    }

    static func logs(_ flags: ContainerFlags) async throws -> Int32 {
        guard flags.positional.count == 1 else { throw ClusterCommands.Failure(description: "usage: shoal container logs [-f] [--tail N] [-t] CONTAINER") }
        let client = try client(flags)
        defer { Task { await client.shutdown() } }
        var query = "?follow=\(flags.has("--follow"))"
        if let tail = flags.value("--tail") { query += "&tail=" + PercentEncoding.encode(tail) }
        try await printLogs(try await client.lines(path(flags.positional[0], "/logs" + query)), timestamps: flags.has("--timestamps"),
                            json: format(flags) == "json")
        return 0
    }

    // MARK: exec

    static func exec(_ flags: ContainerFlags) async throws -> Int32 {
        guard let container = flags.positional.first, !flags.trailing.isEmpty else {
            throw ClusterCommands.Failure(description: "usage: shoal container exec [-e K=V] [-u USER] [-w DIR] CONTAINER COMMAND [ARG...]")
        }
        let client = try client(flags)
        defer { Task { await client.shutdown() } }
        var request = ContainerExecRequest(command: flags.trailing)
        let environment = flags.all("--env").map(envEntry)
        request.environment = environment.isEmpty ? nil : environment
        request.user = flags.value("--user")
        request.workingDirectory = flags.value("--workdir")
        if flags.has("--detach") {
            // Docker's exec -d: started, output discarded, nothing printed; -t
            // still gives it a terminal (a shell waits there), -i attaches
            // nothing: a detached exec can never be attached.
            request.detach = true
            request.tty = flags.has("--tty") ? true : nil
            try await client.perform(.post, path(container, "/exec"), json: request)
            return 0
        }
        if flags.has("--interactive") || flags.has("--tty") {
            return try await streamExec(client, container, request, flags)
        }
        let reply: ContainerExecReply = try await client.call(.post, path(container, "/exec"), json: request)
        if format(flags) == "json" {
            // The output as text, beside the exit code (which is also the CLI's).
            struct TextReply: Encodable { var exitCode: Int32; var standardOutput: String; var standardError: String }
            let text = { (base64: String) in String(decoding: Data(base64Encoded: base64) ?? Data(), as: UTF8.self) }
            _ = ClusterCommands.output(TextReply(exitCode: reply.exitCode, standardOutput: text(reply.standardOutput),
                                                 standardError: text(reply.standardError)))
            return reply.exitCode
        }
        FileHandle.standardOutput.write(Data(base64Encoded: reply.standardOutput) ?? Data())
        FileHandle.standardError.write(Data(base64Encoded: reply.standardError) ?? Data())
        return reply.exitCode
    }

    // MARK: ps, inspect, top, port

    static func list(_ flags: ContainerFlags) async throws -> Int32 {
        let client = try client(flags)
        defer { Task { await client.shutdown() } }
        var query = "?all=\(flags.has("--all"))"
        for filter in flags.all("--filter") {
            let parts = filter.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0] == "status" || parts[0] == "label" else {
                throw ClusterCommands.Failure(description: "--filter \(filter): give status=created|running|paused|exited or label=KEY[=VALUE]")
            }
            query += "&\(parts[0])=" + PercentEncoding.encode(parts[1])
        }
        let containers: [ContainerSummary] = try await client.call(.get, "/v1/containers" + query)
        if flags.has("--quiet") {
            for container in containers { print(flags.has("--no-trunc") ? container.id : String(container.id.prefix(12))) }
            return 0
        }
        if let format = format(flags), format != "table" {
            if format == "json" { return ClusterCommands.output(containers) }
            let template = try GoTemplate(format)
            for container in containers { print(try template.render(psDocument(container))) }
            return 0
        }
        ClusterCommands.printTable(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], containers.map { container in
            let command = flags.has("--no-trunc") ? container.command : truncate(container.command, 20)
            return [flags.has("--no-trunc") ? container.id : String(container.id.prefix(12)), container.image, "\"\(command)\"",
                    ago(container.createdAt), container.status, container.ports.joined(separator: ", "), container.name]
        })
        return 0
    }

    /// The fields docker's `ps --format` templates name.
    static func psDocument(_ container: ContainerSummary) -> JSONValue {
        .object([
            "ID": .string(String(container.id.prefix(12))), "Names": .string(container.name), "Image": .string(container.image),
            "Command": .string("\"\(truncate(container.command, 20))\""), "CreatedAt": .string(container.createdAt),
            "RunningFor": .string(ago(container.createdAt)), "Status": .string(container.status), "State": .string(container.state),
            "Ports": .string(container.ports.joined(separator: ", ")),
            "Labels": .string((container.labels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")),
        ])
    }

    static func truncate(_ text: String, _ length: Int) -> String {
        text.count <= length ? text : String(text.prefix(length - 1)) + "…"
    }

    static func ago(_ timestamp: String) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = formatter.date(from: timestamp) else { return timestamp }
        let seconds = Int(max(0, Date().timeIntervalSince(date)))
        switch seconds {
        case 0..<60: return "\(seconds) seconds ago"
        case 60..<3600: return "\(seconds / 60) minutes ago"
        case 3600..<86_400: return "\(seconds / 3600) hours ago"
        default: return "\(seconds / 86_400) days ago"
        }
    }

    /// `value` as the JSON document a template reads.
    static func document<T: Encodable>(_ value: T) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
    }

    static func inspect(_ flags: ContainerFlags) async throws -> Int32 {
        let client = try client(flags)
        defer { Task { await client.shutdown() } }
        guard !flags.positional.isEmpty else { throw ClusterCommands.Failure(description: "usage: shoal container inspect [-f FORMAT] CONTAINER...") }
        let template = try format(flags).flatMap { $0 == "json" ? nil : try GoTemplate($0) }
        var views: [ContainerInspectView] = []
        var status: Int32 = 0
        for container in flags.positional {
            do {
                views.append(try await client.call(.get, path(container)))
            } catch let error as APIError {
                FileHandle.standardError.write(Data("Error: \(error.message)\n".utf8))
                status = 1
            }
        }
        if let template {
            for view in views { print(try template.render(try document(view))) }
        } else {
            _ = ClusterCommands.output(views)
        }
        return status
    }

    static func top(_ flags: ContainerFlags) async throws -> Int32 {
        guard flags.positional.count == 1 else { throw ClusterCommands.Failure(description: "usage: shoal container top CONTAINER") }
        let client = try client(flags)
        defer { Task { await client.shutdown() } }
        let reply: ContainerTopReply = try await client.call(.get, path(flags.positional[0], "/top"))
        if format(flags) == "json" { return ClusterCommands.output(reply) }
        ClusterCommands.printTable(reply.titles, reply.processes)
        return 0
    }

    /// `docker diff`: `A /path`, `C /path`, `D /path`, one per line, sorted.
    static func diff(_ flags: ContainerFlags) async throws -> Int32 {
        guard flags.positional.count == 1 else { throw ClusterCommands.Failure(description: "usage: shoal container diff CONTAINER") }
        let client = try client(flags)
        defer { Task { await client.shutdown() } }
        let changes: [ContainerChange] = try await client.call(.get, path(flags.positional[0], "/changes"))
        if format(flags) == "json" { return ClusterCommands.output(changes) }
        for change in changes { print("\(change.kind) \(change.path)") }
        return 0
    }

    /// `docker export`: the container's root filesystem as a tar, to stdout
    /// (never a terminal) or to `-o FILE`, which appears only once complete.
    static func export(_ flags: ContainerFlags) async throws -> Int32 {
        guard flags.positional.count == 1 else { throw ClusterCommands.Failure(description: "usage: shoal container export [-o FILE] CONTAINER") }
        let target = path(flags.positional[0], "/export")
        guard let output = flags.value("--output") else {
            guard isatty(STDOUT_FILENO) == 0 else {
                throw ClusterCommands.Failure(description: "refusing to write a tar archive to a terminal\nhint: pass -o FILE or redirect the output (`> FILE`)")
            }
            let client = try client(flags)
            defer { Task { await client.shutdown() } }
            try await client.download(target, to: STDOUT_FILENO)
            return 0
        }
        let partial = output + ".partial-\(getpid())"
        let descriptor = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ClusterCommands.Failure(description: "cannot create \(partial): \(String(cString: strerror(errno)))\nhint: check that the directory exists and is writable")
        }
        do {
            let client = try client(flags)
            defer { Task { await client.shutdown() } }
            try await client.download(target, to: descriptor)
            guard fsync(descriptor) == 0 else {
                throw ClusterCommands.Failure(description: "cannot write \(partial): \(String(cString: strerror(errno)))")
            }
        } catch {
            close(descriptor)
            unlink(partial)
            throw error
        }
        close(descriptor)
        guard rename(partial, output) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(partial)
            throw ClusterCommands.Failure(description: "cannot move the export to \(output): \(reason)")
        }
        return 0
    }

    static func port(_ flags: ContainerFlags) async throws -> Int32 {
        guard flags.positional.count == 1 || flags.positional.count == 2 else {
            throw ClusterCommands.Failure(description: "usage: shoal container port CONTAINER [PRIVATE_PORT[/PROTO]]")
        }
        let client = try client(flags)
        defer { Task { await client.shutdown() } }
        let view: ContainerInspectView = try await client.call(.get, path(flags.positional[0]))
        // Only a running container's ports are published (Docker's `port`
        // prints nothing for a stopped one, and refuses a named port).
        var ports = view.NetworkSettings.Ports.sorted { $0.key < $1.key }
        if flags.positional.count == 2 {
            let requested = flags.positional[1]
            let (number, transport) = requested.firstIndex(of: "/").map { (requested[..<$0], requested[requested.index(after: $0)...]) } ?? (requested[...], "tcp")
            guard let port = UInt16(number), port > 0, ["tcp", "udp"].contains(transport) else {
                throw ClusterCommands.Failure(description: "invalid port '\(requested)': give PRIVATE_PORT[/PROTO], like 80 or 53/udp")
            }
            let wanted = "\(port)/\(transport)"
            let name = view.Name.dropFirst()
            ports = ports.filter { $0.key == wanted }
            if ports.isEmpty {
                let hint = view.State.Running ? "publish it with -p HOST_PORT:\(requested) when you create the container"
                                              : "\(name) is not running: its ports are published only while it runs (start it)"
                throw APIError(status: 404, code: "not_found", message: "no public port '\(wanted)' published for \(name)", hint: hint)
            }
        }
        if format(flags) == "json" { return ClusterCommands.output(Dictionary(uniqueKeysWithValues: ports.map { ($0.key, $0.value) })) }
        for (container, host) in ports { print(flags.positional.count == 2 ? host : "\(container) -> \(host)") }
        return 0
    }
}

import Foundation
import HTTP
import Runtime

/// Interactive streams of the local API: `POST /v1/containers/{id}/attach`
/// and the streaming form of `POST /v1/containers/{id}/exec`, both upgraded
/// to raw `tcp` (as Docker's hijacked attach) and carrying
/// ``ContainerStreamFrame``s both ways.
extension ControlAPI {
    static func addAttachRoutes(_ add: (HTTPMethod, String, @escaping @Sendable (Request) async throws -> HTTPServerResponse) -> Void) {
        add(.post, "/v1/containers/<id>/attach") { request in try await postContainersByIDAttach(request) }
    }

    /// The protocol name both sides put in `Upgrade`.
    public static let attachProtocol = "tcp"

    static func requireUpgrade(_ request: Request, _ what: String) throws {
        guard request.raw.headers.contains(name: "Upgrade", token: attachProtocol) else {
            throw APIError(status: 400, code: "upgrade_required", message: "\(what) is a stream: send `Connection: Upgrade` and `Upgrade: \(attachProtocol)`",
                           hint: "use `shoal container attach` or `shoal container run -it`")
        }
    }

    /// POST /v1/containers/{id}/attach[?stdin=true]: the container's output
    /// from now on (stdout and stderr, or its terminal), its stdin when it
    /// was created with `-i` and `stdin` is asked for, window sizes when it
    /// has a terminal, and its exit last. Attaching to a created container
    /// before starting it (`run -it`) misses nothing.
    static func postContainersByIDAttach(_ request: Request) async throws -> HTTPServerResponse {
        try requireUpgrade(request, "attach")
        let engine = try request.context.daemon.containerEngine()
        let record = try engine.resolve(try request.parameter("id"))
        let container = try engine.container(record)
        let attachInput = try request.flag("stdin")
        // Subscribed before answering, so the client may start the container as soon as it sees the 101.
        let output = container.output.subscribe()
        let state = container.state
        if state.status == .exited {
            throw APIError(status: 409, code: "not_running", message: "container \(record.name) is not running",
                           hint: "start it with `shoal container start -a \(record.name)`, or read its output with `shoal container logs \(record.name)`")
        }
        let stdio = state.spec.stdio
        let runtime = engine.runtime
        let id = record.id
        let session = ContainerAttachSession(
            output: output,
            input: { frame in
                switch frame.kind {
                case .standardInput:
                    guard attachInput, stdio?.openStandardInput == true || stdio?.terminal == true else { return }
                    try await ContainerEngine.blocking { try runtime.writeInput(id, frame.payload) }
                case .endOfInput:
                    guard attachInput, stdio?.standardInputOnce == true, stdio?.terminal != true else { return }
                    try await ContainerEngine.blocking { try runtime.closeInput(id) }
                case .resize:
                    guard stdio?.terminal == true, let size = frame.terminalSize else { return }
                    try await ContainerEngine.blocking { try runtime.resizeTerminal(id, size) }
                case .standardOutput, .standardError, .exit:
                    return
                }
            },
            exit: {
                let state = container.state
                return ContainerStreamExit(exitCode: state.exitStatus?.code ?? -1, error: state.startError)
            },
            outputWasCutOff: { output.wasCutOff })
        var headers = HTTPHeaders()
        headers.add(name: terminalHeader, value: String(stdio?.terminal == true))
        headers.add(name: standardInputHeader, value: String(attachInput && (stdio?.openStandardInput == true || stdio?.terminal == true)))
        return .upgrade(to: attachProtocol, headers: headers) { stream in await session.run(stream) }
    }

    /// On an attach's 101: whether the container has a terminal (the client
    /// puts its own in raw mode) and whether its input reaches the container.
    public static let terminalHeader = "Shoal-Terminal"
    public static let standardInputHeader = "Shoal-Stdin"

    /// The streaming form of exec (`exec -i`, `-t`): the process starts,
    /// then the connection is upgraded and carries its streams and exit.
    static func streamExec(_ request: Request, engine: ContainerEngine, record: ContainerEngine.Record, body: ContainerExecRequest) async throws -> HTTPServerResponse {
        var exec = ExecSpec(command: body.command, environment: body.environment ?? [], user: body.user, workingDirectory: body.workingDirectory)
        exec.windowSize = try ContainerOptions.terminalSize(body.consoleSize)
        let spec = exec
        let streams: ExecStreams = body.tty == true ? .terminal : (body.interactive == true ? .standardInput : .none)
        let process: ExecProcess
        do {
            process = try await ContainerEngine.blocking { try engine.runtime.startExec(record.id, spec, streams: streams) }
        } catch {
            throw ContainerEngine.apiError(error, name: record.name)
        }
        let session = ContainerAttachSession(
            output: ExecOutputReader.stream(process),
            input: { frame in
                switch frame.kind {
                case .standardInput:
                    try await ContainerEngine.blocking { try process.writeInput(frame.payload) }
                case .endOfInput:
                    if process.standardInput >= 0 { process.close(process.standardInput) }
                case .resize:
                    if let size = frame.terminalSize { process.resize(size) }
                case .standardOutput, .standardError, .exit:
                    return
                }
            },
            exit: {
                let status = (try? await ContainerEngine.blocking { process.wait() }) ?? .unknown
                return ContainerStreamExit(exitCode: status.code)
            },
            detached: {
                // Nobody will read its status: reap it whenever it ends.
                Thread.detachNewThread { _ = process.wait() }
            })
        return .upgrade(to: attachProtocol) { stream in await session.run(stream) }
    }
}

import Foundation
import HTTP
import Runtime

/// `POST /v1/containers/run`: `shoal container run` without `-d`, `-i` or
/// `-t` in one call instead of four (create, wait, logs, start).
extension ControlAPI {
    /// On the run's 200: the created container's id, for the CLI's signal proxy.
    public static let containerIDHeader = "Shoal-Container-Id"

    /// Creates the container (errors answer as `POST /v1/containers` does,
    /// before any stream), then streams x-ndjson: its log entries as stored
    /// (as `logs --follow` of this run) and, last, one ``ContainerRunEnd``
    /// line: why it could not start, or its exit, sent once it is removed
    /// when it was created with `autoRemove` (the `--rm` CLI returns then).
    /// Input and terminals need the attach stream: those runs are refused.
    static func postContainersRun(_ request: Request) async throws -> HTTPServerResponse {
        var timings = StepTimings("run-create")
        defer { timings.report() }
        let engine = try request.context.daemon.containerEngine()
        let body = try await request.decode(ContainerCreateRequest.self)
        timings.mark("parse")
        if body.interactive == true || body.tty == true {
            throw APIError.invalid("interactive", "a run with input or a terminal needs the attach stream: create, attach, then start (as `shoal container run -it` does)")
        }
        let record = try await engine.create(body)
        timings.mark("create")
        let container = try engine.container(record)
        // Read before the start: the log stream waits for the end of the run that follows.
        let initial = container.state
        let follower = ContainerLogFollower(path: container.logPath, maxFiles: initial.spec.logging?.maxFiles ?? 1)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/x-ndjson")
        headers.add(name: containerIDHeader, value: record.id)
        return HTTPServerResponse(status: .ok, headers: headers, body: .stream { writer in
            try await streamRun(record, container: container, initial: initial, follower: follower, engine: engine, to: writer)
        })
    }

    @inline(never)  // see Request.body()
    static func streamRun(_ record: ContainerEngine.Record, container: Container, initial: ContainerState, follower: ContainerLogFollower,
                          engine: ContainerEngine, to writer: HTTPBodyWriter) async throws {
        var timings = StepTimings("run-stream")
        defer { timings.report() }
        var end = ContainerRunEnd()
        do {
            try await engine.start(record.id)
            timings.mark("start")
        } catch {
            let failure = APIError.from(error)
            end.startError = failure.message
            end.startErrorCode = failure.code
        }
        if end.startError == nil {
            let ended = try await streamLogs([], follower: follower, container: container, initial: initial, nextExit: true, to: writer)
            timings.mark("logs")
            do {
                // The exit of this run; with --rm, once the container is out of view.
                end.exit = record.request.autoRemove == true
                    ? try await engine.wait(container, condition: .removed) : ContainerEngine.waitReply(ended ?? container.state)
                timings.mark("wait")
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                end.exit = ContainerWaitReply(statusCode: -1, oomKilled: false, error: APIError.from(error).message)
            }
        }
        var line = Support.encode(end)
        line.append(UInt8(ascii: "\n"))
        try await writer.write(line)
        timings.mark("end")
    }
}

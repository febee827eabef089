import Foundation
import HTTP
import Runtime

/// The local container and volume routes (`/v1/containers`, `/v1/volumes`):
/// only on the daemon's Unix socket, backed by the node's ``ContainerEngine``.
extension ControlAPI {
    /// A blank line this often on `logs --follow` and `wait` streams, so a
    /// client that went away is noticed while the container is silent.
    static let streamKeepAlive: Duration = .seconds(5)

    static func addContainerRoutes(_ add: (HTTPMethod, String, @escaping @Sendable (Request) async throws -> HTTPServerResponse) -> Void) {
        add(.get, "/v1/containers") { request in try await getContainers(request) }
        add(.post, "/v1/containers") { request in try await postContainers(request) }
        add(.post, "/v1/containers/run") { request in try await postContainersRun(request) }
        add(.get, "/v1/containers/<id>") { request in try await getContainersByID(request) }
        add(.delete, "/v1/containers/<id>") { request in try await deleteContainersByID(request) }
        add(.post, "/v1/containers/<id>/start") { request in try await postContainersByIDStart(request) }
        add(.post, "/v1/containers/<id>/stop") { request in try await postContainersByIDStop(request) }
        add(.post, "/v1/containers/<id>/restart") { request in try await postContainersByIDRestart(request) }
        add(.post, "/v1/containers/<id>/kill") { request in try await postContainersByIDKill(request) }
        add(.post, "/v1/containers/<id>/pause") { request in try await postContainersByIDPause(request) }
        add(.post, "/v1/containers/<id>/unpause") { request in try await postContainersByIDUnpause(request) }
        add(.post, "/v1/containers/<id>/wait") { request in try await postContainersByIDWait(request) }
        add(.get, "/v1/containers/<id>/logs") { request in try await getContainersByIDLogs(request) }
        add(.post, "/v1/containers/<id>/exec") { request in try await postContainersByIDExec(request) }
        add(.get, "/v1/containers/<id>/top") { request in try await getContainersByIDTop(request) }
        add(.get, "/v1/containers/<id>/stats") { request in try await getContainersByIDStats(request) }
        add(.get, "/v1/containers/<id>/changes") { request in try await getContainersByIDChanges(request) }
        add(.get, "/v1/containers/<id>/export") { request in try await getContainersByIDExport(request) }
        add(.post, "/v1/containers/<id>/commit") { request in try await postContainersByIDCommit(request) }
        add(.get, "/v1/volumes") { request in try await getVolumes(request) }
        add(.post, "/v1/volumes") { request in try await postVolumes(request) }
        add(.get, "/v1/volumes/<id>") { request in try await getVolumesByID(request) }
        add(.delete, "/v1/volumes/<id>") { request in try await deleteVolumesByID(request) }
        addAttachRoutes(add)
    }

    // MARK: Containers

    /// GET /v1/containers[?all=true][&status=exited][&label=KEY[=VALUE]]: the
    /// engine's containers and those the node's agent runs for service
    /// tasks (labelled `com.docker.swarm.*`, as docker lists them), newest first.
    static func getContainers(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        let all = try request.flag("all")
        let status = request.raw.query["status"]
        if let status, !["created", "running", "paused", "exited"].contains(status) {
            throw APIError.invalid("query parameter 'status'", "'\(status)' must be created, running, paused or exited")
        }
        let label = request.raw.query["label"].map { $0.split(separator: "=", maxSplits: 1).map(String.init) }
        let tasks = (request.context.daemon.agent?.taskContainers() ?? []).compactMap(engine.summary(task:))
        let summaries = (engine.all().compactMap(engine.summary) + tasks).filter { summary in
            if let label, let first = label.first {
                guard let value = summary.labels?[first], label.count == 1 || label[1] == value else { return false }
            }
            if let status { return summary.state == status }
            return all || summary.state == "running" || summary.state == "paused"
        }
        return json(summaries.sorted { $0.createdAt > $1.createdAt })
    }

    /// POST /v1/containers
    static func postContainers(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        let body = try await request.decode(ContainerCreateRequest.self)
        let record = try await engine.create(body)
        return json(ContainerCreateReply(id: record.id, name: record.name), status: 201)
    }

    /// GET /v1/containers/{id}
    static func getContainersByID(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        return json(try engine.inspect(try engine.resolve(try request.parameter("id"))))
    }

    /// DELETE /v1/containers/{id}[?force=true][&volumes=true]
    static func deleteContainersByID(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        try await engine.remove(try request.parameter("id"), force: try request.flag("force"), volumes: try request.flag("volumes"))
        return HTTPServerResponse(status: .noContent)
    }

    /// POST /v1/containers/{id}/start
    static func postContainersByIDStart(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        try await engine.start(try request.parameter("id"))
        return HTTPServerResponse(status: .noContent)
    }

    /// POST /v1/containers/{id}/stop[?timeout=SECONDS]
    static func postContainersByIDStop(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        try await engine.stop(try request.parameter("id"), timeout: try request.timeoutSeconds())
        return HTTPServerResponse(status: .noContent)
    }

    /// POST /v1/containers/{id}/restart[?timeout=SECONDS]
    static func postContainersByIDRestart(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        try await engine.restart(try request.parameter("id"), timeout: try request.timeoutSeconds())
        return HTTPServerResponse(status: .noContent)
    }

    /// POST /v1/containers/{id}/kill[?signal=TERM]
    static func postContainersByIDKill(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        try engine.kill(try request.parameter("id"), signal: try ContainerOptions.signal(request.raw.query["signal"]))
        return HTTPServerResponse(status: .noContent)
    }

    /// POST /v1/containers/{id}/pause
    static func postContainersByIDPause(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        try engine.setPaused(try request.parameter("id"), true)
        return HTTPServerResponse(status: .noContent)
    }

    /// POST /v1/containers/{id}/unpause
    static func postContainersByIDUnpause(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        try engine.setPaused(try request.parameter("id"), false)
        return HTTPServerResponse(status: .noContent)
    }

    /// POST /v1/containers/{id}/wait[?condition=not-running|next-exit|removed]: a stream that
    /// ends with one ``ContainerWaitReply`` line once the container has
    /// exited (blank lines before it keep the connection alive).
    static func postContainersByIDWait(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        let key = try request.parameter("id")
        let condition = try request.waitCondition()
        _ = try engine.resolve(key)  // 404 now, not inside the stream
        let waiting = Task { try await engine.wait(key, condition: condition) }
        return HTTPServerResponse(status: .ok, headers: ["Content-Type": "application/x-ndjson"], body: .stream { writer in
            try await streamWait(waiting, to: writer)
        })
    }

    @inline(never)  // see Request.body()
    static func streamWait(_ waiting: Task<ContainerWaitReply, any Error>, to writer: HTTPBodyWriter) async throws {
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: streamKeepAlive)
                if Task.isCancelled { break }
                try? await writer.write([UInt8(ascii: "\n")])
            }
        }
        defer { ticker.cancel() }
        let reply: ContainerWaitReply
        do {
            reply = try await waiting.value
        } catch {
            let failure = APIError.from(error)
            reply = ContainerWaitReply(statusCode: -1, oomKilled: false, error: failure.message)
        }
        ticker.cancel()
        var line = Support.encode(reply)
        line.append(UInt8(ascii: "\n"))
        try await writer.write(line)
    }

    /// GET /v1/containers/{id}/logs[?follow=true][&tail=N][&condition=next-exit]:
    /// the container's JSON-lines log entries, one per line; with `follow`,
    /// until its run ends (with next-exit: a run started after the request).
    static func getContainersByIDLogs(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        let record = try engine.resolve(try request.parameter("id"))
        let container = try engine.container(record)
        let follow = try request.flag("follow")
        let nextExit = try request.waitCondition() == .nextExit
        let tail = try request.tail()
        let initial = container.state
        let follower = ContainerLogFollower(path: container.logPath, maxFiles: initial.spec.logging?.maxFiles ?? 1)
        let existing = follower.existing(tail: tail)
        return HTTPServerResponse(status: .ok, headers: ["Content-Type": "application/x-ndjson"], body: .stream { writer in
            try await streamLogs(existing, follower: follow ? follower : nil, container: container, initial: initial, nextExit: nextExit, to: writer)
        })
    }

    /// Returns the state that ended the run (nil without a follower).
    @inline(never)  // see Request.body()
    @discardableResult
    static func streamLogs(_ existing: [ArraySlice<UInt8>], follower: ContainerLogFollower?, container: Container, initial: ContainerState,
                           nextExit: Bool, to writer: HTTPBodyWriter) async throws -> ContainerState? {
        var batch: [UInt8] = []
        for line in existing { batch += line }
        if !batch.isEmpty { try await writer.write(batch) }
        guard let follower else { return nil }
        // Woken by the monitor as it logs output and records the exit; the
        // tick sends the keep-alive.
        let changes = ContainerChangeStream(container, tick: streamKeepAlive)
        defer { changes.close() }
        var quietSince = ContinuousClock.now
        while true {
            // Checked before reading: the monitor writes the last lines before it records the exit.
            let state = container.state
            let exited = ContainerEngine.runEnded(state, since: initial, nextExit: nextExit)
            let lines = follower.next()
            if !lines.isEmpty {
                try await writer.write(lines.reduce(into: [UInt8]()) { $0 += $1 })
                quietSince = ContinuousClock.now
            } else if ContinuousClock.now - quietSince >= streamKeepAlive {
                try await writer.write([UInt8(ascii: "\n")])
                quietSince = ContinuousClock.now
            }
            if exited { return state }
            guard await changes.next() else { throw CancellationError() }
        }
    }

    /// POST /v1/containers/{id}/exec: runs a process inside to completion
    /// (or, with `detach`, starts it and answers 204).
    static func postContainersByIDExec(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        let record = try engine.resolve(try request.parameter("id"))
        let body = try await request.decode(ContainerExecRequest.self)
        guard !body.command.isEmpty else { throw APIError.invalid("command", "give the command to run in the container") }
        guard try engine.container(record).state.status == .running else {
            if try engine.container(record).state.status == .paused {
                throw APIError(status: 409, code: "paused", message: "container \(record.name) is paused", hint: "unpause it first: `shoal container unpause \(record.name)`")
            }
            throw APIError(status: 409, code: "not_running", message: "container \(record.name) is not running", hint: "start it first: `shoal container start \(record.name)`")
        }
        if body.detach == true {
            // Docker's exec instances cannot be attached after a detached start either.
            guard body.interactive != true, body.standardInput == nil else {
                throw APIError.invalid("field 'detach'", "a detached exec (exec -d) runs with no client attached, now or later, so it takes no input: drop interactive and standardInput (tty is fine), or run exec -i without -d")
            }
            var exec = ExecSpec(command: body.command, environment: body.environment ?? [], user: body.user, workingDirectory: body.workingDirectory)
            exec.windowSize = try ContainerOptions.terminalSize(body.consoleSize)
            let spec = exec
            let terminal = body.tty == true
            do {
                _ = try await ContainerEngine.blocking { try engine.runtime.startDetachedExec(record.id, spec, terminal: terminal) }
            } catch {
                throw ContainerEngine.apiError(error, name: record.name)
            }
            return HTTPServerResponse(status: .noContent)
        }
        if request.raw.headers.contains(name: "Upgrade") {
            try requireUpgrade(request, "a streaming exec")
            return try await streamExec(request, engine: engine, record: record, body: body)
        }
        if body.tty == true || body.interactive == true {
            throw APIError(status: 400, code: "upgrade_required", message: "exec with a terminal or interactive stdin is a stream",
                           hint: "send `Connection: Upgrade` and `Upgrade: \(attachProtocol)` (as `shoal container exec -it` does), or pass stdin as base64 in standardInput")
        }
        var input: Data?
        if let text = body.standardInput {
            guard let decoded = Data(base64Encoded: text) else { throw APIError.invalid("field 'standardInput'", "it must be base64") }
            input = decoded
        }
        let spec = ExecSpec(command: body.command, environment: body.environment ?? [], user: body.user, workingDirectory: body.workingDirectory,
                            standardInput: input)
        let result: ExecResult
        do {
            result = try await ContainerEngine.blocking { try engine.runtime.exec(record.id, spec) }
        } catch {
            throw ContainerEngine.apiError(error, name: record.name)
        }
        return json(ContainerExecReply(exitCode: result.status.code, standardOutput: result.standardOutput.base64EncodedString(),
                                       standardError: result.standardError.base64EncodedString()))
    }

    /// GET /v1/containers/{id}/top
    static func getContainersByIDTop(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        return json(try engine.top(try engine.resolve(try request.parameter("id"))))
    }

    /// GET /v1/containers/{id}/stats
    static func getContainersByIDStats(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        return json(try engine.stats(try engine.resolve(try request.parameter("id"))))
    }

    /// GET /v1/containers/{id}/changes: the writable layer against the image (`diff`).
    static func getContainersByIDChanges(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        let record = try engine.resolve(try request.parameter("id"))
        let changes: [FilesystemChange]
        do {
            changes = try await ContainerEngine.blocking { try engine.runtime.diff(record.id) }
        } catch {
            throw ContainerEngine.apiError(error, name: record.name)
        }
        return json(changes.map { ContainerChange(kind: $0.kind.rawValue, path: $0.path) })
    }

    /// Bytes read from the spooled export per body write.
    static let exportChunkBytes = 1 << 16

    /// GET /v1/containers/{id}/export: the merged root filesystem as a tar.
    /// Written to an unlinked temporary file first, so a failure is an
    /// error status rather than a truncated tar with a 200.
    static func getContainersByIDExport(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        let record = try engine.resolve(try request.parameter("id"))
        let template = NSTemporaryDirectory() + "/shoal-export-XXXXXX"
        var name = Array(template.utf8CString)
        let descriptor = mkstemp(&name)
        guard descriptor >= 0 else {
            throw APIError(status: 500, code: "runtime_failed", message: "cannot create a temporary file for the export: \(String(cString: strerror(errno)))",
                           hint: "check that \(NSTemporaryDirectory()) is writable and has room")
        }
        unlink(name)  // gone with the descriptor, whatever happens
        let length: Int
        do {
            try await ContainerEngine.blocking { try engine.runtime.export(record.id, to: descriptor) }
            length = Int(lseek(descriptor, 0, SEEK_END))
            lseek(descriptor, 0, SEEK_SET)
        } catch {
            close(descriptor)
            throw ContainerEngine.apiError(error, name: record.name)
        }
        return HTTPServerResponse(status: .ok, headers: ["Content-Type": "application/x-tar"], body: .stream(length: length) { writer in
            try await streamFile(descriptor, to: writer)
        })
    }

    @inline(never)  // see Request.body()
    static func streamFile(_ descriptor: Int32, to writer: HTTPBodyWriter) async throws {
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: exportChunkBytes)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }  // a read error shows as a length mismatch to the client
            try await writer.write(Array(buffer[..<count]))
        }
    }

    // MARK: Volumes

    /// GET /v1/volumes
    static func getVolumes(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        return json(engine.volumes.list().map(engine.volumeView))
    }

    /// POST /v1/volumes
    static func postVolumes(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        let body = try await request.decodeOptional(VolumeCreateRequest.self) ?? VolumeCreateRequest()
        let name = body.name ?? ContainerEngine.randomID()
        let (record, created) = try engine.volumes.ensure(name, labels: body.labels ?? [:])
        return json(engine.volumeView(record), status: created ? 201 : 200)
    }

    /// GET /v1/volumes/{id}
    static func getVolumesByID(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        let name = try request.parameter("id")
        guard let record = engine.volumes.read(name) else {
            throw APIError(status: 404, code: "not_found", message: "no such volume: \(name)", hint: "list them with `shoal volume ls`")
        }
        return json(engine.volumeView(record))
    }

    /// DELETE /v1/volumes/{id}[?force=true]
    static func deleteVolumesByID(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        try engine.removeVolume(try request.parameter("id"), force: try request.flag("force"))
        return HTTPServerResponse(status: .noContent)
    }
}

extension ControlAPI.Request {
    /// `?condition=not-running|next-exit|removed` of wait and logs (Docker's wait conditions).
    func waitCondition() throws -> ContainerEngine.WaitCondition {
        guard let text = raw.query["condition"] else { return .notRunning }
        guard let condition = ContainerEngine.WaitCondition(rawValue: text) else {
            throw APIError.invalid("query parameter 'condition'", "'\(text)' must be not-running, next-exit or removed")
        }
        return condition
    }

    /// `?timeout=SECONDS` of stop and restart (Docker's `-t`).
    func timeoutSeconds() throws -> Int? {
        guard let text = raw.query["timeout"] else { return nil }
        guard let seconds = Int(text), seconds >= 0, seconds <= 86_400 else {
            throw APIError.invalid("query parameter 'timeout'", "'\(text)' must be a number of seconds from 0 to 86400")
        }
        return seconds
    }
}

import Agent
import ClusterState
import Foundation
import HTTP

/// `shoal service logs` on any manager: every task's log, read by the agent
/// that runs it (``Daemon/taskLogs(_:follow:tail:)``), merged into one stream.
extension ControlAPI {
    /// GET /v1/services/<id>/logs[?follow=true][&tail=N]: NDJSON
    /// ``ServiceLogLine``s of every task that started a container. Without
    /// `follow` all lines ordered by time; with it, the kept lines then new
    /// ones as they come, until every followed container exits. A task whose
    /// log cannot be read gives one line with `error` (tasks that ended and
    /// whose container is gone are left out).
    static func getServicesByIDLogs(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let key = try request.parameter("id")
        let follow = try request.flag("follow")
        let tail = try request.tail()
        let found = try await manager.read(stale: true) { state -> (Service, [ServiceTask])? in
            guard let service = resolveService(key, in: state) else { return nil }
            return (service, state.tasks(ofService: service.id))
        }
        guard let (_, allTasks) = found else { throw APIError.notFound("service \(key)") }
        let tasks = allTasks.filter { $0.nodeID != nil && $0.status.state >= .starting }
            .sorted { ($0.slot, $0.meta.createdIndex) < ($1.slot, $1.meta.createdIndex) }
        let daemon = context.daemon
        return HTTPServerResponse(status: .ok, headers: ["Content-Type": "application/x-ndjson"], body: .stream { writer in
            let (batches, sink) = AsyncStream<[ServiceLogLine]>.makeStream()
            let readers = Task {
                await withTaskGroup(of: Void.self) { group in
                    for task in tasks {
                        group.addTask {
                            let origin = ServiceLogLine(taskID: task.id.rawValue, slot: task.slot, nodeID: task.nodeID?.rawValue ?? "")
                            do {
                                for try await lines in try await daemon.taskLogs(task, follow: follow, tail: tail) {
                                    sink.yield(lines.map { line in
                                        var entry = origin
                                        entry.stream = line.stream
                                        entry.time = line.time
                                        entry.log = line.log
                                        return entry
                                    })
                                }
                            } catch {
                                // An ended task whose container is gone has no log: not an error.
                                guard !task.status.state.isTerminal else { return }
                                var entry = origin
                                entry.error = APIError.from(error).message
                                sink.yield([entry])
                            }
                        }
                    }
                }
                sink.finish()
            }
            defer { readers.cancel() }
            if follow {
                var quietSince = ContinuousClock.now
                for await batch in batches {
                    if !batch.isEmpty {
                        try await writer.write(ndjson(batch))
                        quietSince = ContinuousClock.now
                    } else if ContinuousClock.now - quietSince >= streamKeepAlive {
                        // A client that left is noticed while the tasks are silent.
                        try await writer.write([UInt8(ascii: "\n")])
                        quietSince = ContinuousClock.now
                    }
                }
            } else {
                var all: [ServiceLogLine] = []
                for await batch in batches { all += batch }
                // Errors first, then every line by time (RFC 3339 UTC with fixed digits sorts as text); ties keep task order.
                let ordered = all.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element)
                if !ordered.isEmpty { try await writer.write(ndjson(ordered)) }
            }
        })
    }

    static func ndjson(_ lines: [ServiceLogLine]) -> [UInt8] {
        var bytes: [UInt8] = []
        for line in lines {
            bytes += Support.encode(line)
            bytes.append(UInt8(ascii: "\n"))
        }
        return bytes
    }

    /// GET /v1/tasks/<id>/logs: what the task's container wrote so far, from whichever node runs it.
    static func getTasksByIDLogs(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let id = try request.objectID("id")
        let task: ServiceTask?
        if let manager = context.daemon.manager {
            task = try await manager.read(stale: true, { $0.task(id) })
        } else {
            task = nil
        }
        guard let task else { throw APIError.notFound("task \(id)") }
        var output = "", errors = ""
        for try await lines in try await context.daemon.taskLogs(task, follow: false, tail: nil) {
            for line in lines {
                if line.stream == "stderr" { errors += line.log } else { output += line.log }
            }
        }
        return json(TaskLogsView(taskID: id.rawValue, standardOutput: output, standardError: errors))
    }
}

extension ControlAPI.Request {
    /// `tail=N` or `tail=all` (nil).
    func tail() throws -> Int? {
        guard let text = raw.query["tail"], text != "all" else { return nil }
        guard let count = Int(text), count >= 0 else { throw APIError.invalid("query parameter 'tail'", "'\(text)' must be a non-negative integer or all") }
        return count
    }
}

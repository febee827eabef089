import Agent
import ClusterState
import Foundation
import HTTP
import Manager

/// `shoal service logs` on any manager: every task's log, read by the agent
/// that runs it (``Daemon/taskLogs(_:follow:tail:)``), merged into one stream.
extension ControlAPI {
    /// How long the follower waits before it lists the service's tasks again
    /// when its watch on the change log ended early (it fell behind the log).
    static let serviceLogRewatchDelay: Duration = .milliseconds(100)

    /// GET /v1/services/<id>/logs[?follow=true][&tail=N]: NDJSON
    /// ``ServiceLogLine``s of every task that started a container. Without
    /// `follow` all lines ordered by time; with it, the kept lines then new
    /// ones as they come, from the tasks there were and from every task that
    /// starts later (scale up, a replaced task, an update), as `docker
    /// service logs -f` does, until the service is removed or the client
    /// leaves. `tail` applies to the tasks there were; a task that starts
    /// later is followed from its first line. A task whose log cannot be
    /// read gives one line with `error` (tasks that ended and whose container
    /// is gone are left out).
    static func getServicesByIDLogs(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let key = try request.parameter("id")
        let follow = try request.flag("follow")
        let tail = try request.tail()
        let found = try await manager.read(stale: true) { state -> (Service, [ServiceTask], UInt64)? in
            guard let service = resolveService(key, in: state) else { return nil }
            return (service, state.tasks(ofService: service.id), state.appliedIndex)
        }
        guard let (service, allTasks, readIndex) = found else { throw APIError.notFound("service \(key)") }
        let tasks = allTasks.filter(hasLog).sorted { ($0.slot, $0.meta.createdIndex) < ($1.slot, $1.meta.createdIndex) }
        let daemon = context.daemon
        return HTTPServerResponse(status: .ok, headers: ["Content-Type": "application/x-ndjson"], body: .stream { writer in
            let (batches, sink) = AsyncStream<[ServiceLogLine]>.makeStream()
            let readers = Task {
                await withTaskGroup(of: Void.self) { group in
                    var followed = Set(tasks.map(\.id))
                    for task in tasks {
                        group.addTask { await readTaskLog(task, daemon: daemon, follow: follow, tail: tail, into: sink) }
                    }
                    guard follow else { return }
                    // Tasks that start from now on: found in the change log
                    // after the index the list above was read at.
                    var index = readIndex
                    while !Task.isCancelled {
                        for await event in manager.raft.watch(after: index) {
                            index = event.index
                            switch event.object {
                            case .service(let changed) where changed.id == service.id && event.action == .removed:
                                return
                            case .task(let task) where task.serviceID == service.id && hasLog(task) && followed.insert(task.id).inserted:
                                group.addTask { await readTaskLog(task, daemon: daemon, follow: true, tail: nil, into: sink) }
                            default:
                                break
                            }
                        }
                        if Task.isCancelled { return }
                        // The watch ended without us: this watcher fell behind the change log. List again.
                        try? await Task.sleep(for: serviceLogRewatchDelay)
                        guard let (tasks, appliedIndex) = try? await manager.read(stale: true, { state -> ([ServiceTask], UInt64)? in
                            state.service(service.id).map { _ in (state.tasks(ofService: service.id), state.appliedIndex) }
                        }) else { return }
                        for task in tasks where hasLog(task) && followed.insert(task.id).inserted {
                            group.addTask { await readTaskLog(task, daemon: daemon, follow: true, tail: nil, into: sink) }
                        }
                        index = appliedIndex
                    }
                }
                sink.finish()
            }
            defer { readers.cancel() }
            if follow {
                // A tick while nothing is followed, so a client that left is noticed.
                let ticker = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: streamKeepAlive)
                        sink.yield([])
                    }
                }
                defer { ticker.cancel() }
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

    /// A task whose container was started has a log to read: one that
    /// runs, one waiting for its first passing health check (`starting`
    /// with a health verdict), or one that ended (if its container is
    /// gone, it is left out). A task `starting` without a verdict is only
    /// creating its container: followed once it runs, else its reader
    /// would find nothing running and end at once.
    static func hasLog(_ task: ServiceTask) -> Bool {
        guard task.nodeID != nil else { return false }
        switch task.status.state {
        case .running: return true
        case .starting: return task.status.health != nil
        case .rejected: return false
        default: return task.status.state.isTerminal
        }
    }

    /// Reads one task's log into `sink` as ``ServiceLogLine``s, ending when
    /// the log does (with `follow`, when its container exits).
    static func readTaskLog(_ task: ServiceTask, daemon: Daemon, follow: Bool, tail: Int?,
                            into sink: AsyncStream<[ServiceLogLine]>.Continuation) async {
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

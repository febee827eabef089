import Agent
import ClusterState
import Foundation

/// `shoal service logs` from any manager: each task's log comes from the
/// agent that runs it. Tasks of this node are read here; others are asked of
/// their agent through its dispatcher session, on this manager or, when the
/// agent is connected to another manager, through that one
/// (`shoal.manager.taskLogs`).
extension Daemon {
    func taskLogs(_ task: ServiceTask, follow: Bool, tail: Int?) async throws -> AsyncThrowingStream<[TaskLogLine], any Error> {
        guard let nodeID = task.nodeID, task.status.state >= .starting else {
            throw APIError(status: 409, code: "no_log", message: "task \(task.id) never started a container (it is \(task.status.state)): it has no log",
                           hint: "see why with `shoal service ps`")
        }
        if nodeID.rawValue == self.nodeID, let agent {
            do {
                return try agent.logLines(taskID: task.id, follow: follow, tail: tail)
            } catch {
                throw APIError(status: 404, code: "no_log", message: "\(error)", hint: "its container is gone; only tasks whose container is kept have logs")
            }
        }
        guard let manager else {
            throw APIError(status: 503, code: "not_a_manager", message: "task \(task.id) runs on another node and this node is not a manager",
                           hint: "ask a manager (`--host`)")
        }
        if let stream = manager.dispatcher.taskLogs(nodeID: nodeID, taskID: task.id, follow: follow, tail: tail) { return stream }
        let others = manager.knownManagers.filter { $0.key != manager.raftID }.map(\.value).sorted()
        let request = TaskLogForwardRequest(nodeID: nodeID, taskID: task.id, follow: follow, tail: tail)
        let unreachable = APIError(status: 503, code: "unavailable",
                                   message: "the agent of node \(nodeID) is connected to no manager (the node is down or unreachable): the log of task \(task.id) cannot be read",
                                   hint: "check the node with `shoal node ls`")
        // One producer tries the other managers in turn: the first that holds the session streams the log.
        return AsyncThrowingStream { continuation in
            let producer = Task {
                for address in others {
                    let messages: AsyncThrowingStream<[UInt8], any Error>
                    do {
                        messages = try await manager.peers.stream(address, ManagerMethods.taskLogs, request)
                    } catch {
                        continue
                    }
                    var found = false
                    do {
                        for try await message in messages {
                            let reply = try Support.decode(RPCReply<[TaskLogLine]>.self, from: message)
                            if let error = reply.error {
                                if !found && error.code == "no_session" { break }
                                throw error
                            }
                            found = true
                            if let lines = reply.value, !lines.isEmpty { continuation.yield(lines) }
                        }
                    } catch {
                        // A manager that fails before it said it holds the session: the next may.
                        if found { return continuation.finish(throwing: error) }
                        continue
                    }
                    if found { return continuation.finish() }
                }
                continuation.finish(throwing: unreachable)
            }
            continuation.onTermination = { _ in producer.cancel() }
        }
    }
}

extension ManagerNode {
    /// Serves `shoal.manager.taskLogs` from this manager's dispatcher sessions.
    func registerTaskLogs() {
        rpcServer.registerStream(ManagerMethods.taskLogs, access: .managers) { [weak self] request, writer in
            func send(_ reply: RPCReply<[TaskLogLine]>) async throws { try await writer.send(Support.encode(reply)) }
            let body: TaskLogForwardRequest
            do {
                body = try Support.decode(TaskLogForwardRequest.self, from: request.payload)
            } catch {
                return try await send(RPCReply(error: APIError.from(error)))
            }
            guard let self, let stream = self.dispatcher.taskLogs(nodeID: body.nodeID, taskID: body.taskID, follow: body.follow, tail: body.tail) else {
                return try await send(RPCReply(error: APIError(status: 404, code: "no_session", message: "node \(body.nodeID) has no session on this manager")))
            }
            try await send(RPCReply(value: []))
            do {
                for try await lines in stream { try await send(RPCReply(value: lines)) }
            } catch {
                try await send(RPCReply(error: APIError.from(error)))
            }
        }
    }
}

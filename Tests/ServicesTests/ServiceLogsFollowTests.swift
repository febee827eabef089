import TestSupport
import ClusterState
@testable import Daemon
import Foundation
import Testing

@Suite("service logs --follow", .serialized, .enabled(if: DevNode.available && ShoalBinary.path != nil, "needs root, busybox-static and the shoal binary"))
struct ServiceLogsFollowTests {
    func live(_ tasks: [ServiceTask]) -> [ServiceTask] {
        tasks.filter { $0.status.state == .running && $0.desiredState == .running }
    }

    /// `name.slot.task@node | ` as the CLI prefixes a task's lines.
    func prefix(_ task: ServiceTask, _ hostname: String) -> String {
        "chatty.\(task.slot).\(task.id.rawValue.prefix(12))@\(hostname) | "
    }

    @Test("follows tasks that start after it began (scale up, a replaced task), each line with its task's prefix, and ends when the service is removed")
    func followsNewTasks() async throws {
        let node = try await DevNode()
        var follower: LineCollector?
        do {
            var spec = webSpec("chatty", replicas: 1)
            spec.task.command = ["sh", "-c", "echo \"hello from $SHOAL_TASK_SLOT\"; while true; do echo \"tick $SHOAL_TASK_SLOT\"; sleep 0.5; done"]
            let service = try await node.create(spec)
            try await node.wait(service.id, "1 running") { live($0).count == 1 }
            let nodes: [NodeView] = try await node.client.call(.get, "/v1/nodes")
            let hostname = try #require(nodes.first?.status.hostname)
            let first = try #require(live(try await node.tasks(service.id)).first)

            let started = try LineCollector(try ShoalBinary.url().path, ["service", "logs", "--follow", "chatty"], socket: node.directory + "/shoal.sock")
            follower = started
            #expect(started.wait(timeout: .seconds(30)) { $0.contains(prefix(first, hostname) + "hello from 1\n") }, "the first task's lines: \(started.text)")

            // Scale up: the new tasks' lines arrive on the same stream, from their first line.
            try await node.update(service.id) { $0.mode = .replicated(replicas: 3) }
            try await node.wait(service.id, "3 running") { live($0).count == 3 }
            let added = live(try await node.tasks(service.id)).filter { $0.id != first.id }
            #expect(added.count == 2)
            for task in added {
                #expect(started.wait(timeout: .seconds(30)) { $0.contains(prefix(task, hostname) + "hello from \(task.slot)\n") },
                        "slot \(task.slot), started after the command began: \(started.text)")
            }

            // A killed container: its replacement is followed too.
            try node.daemon.agent!.runtime.kill("task-" + first.id.rawValue)
            try await node.wait(service.id, "slot 1 replaced") { tasks in
                live(tasks).count == 3 && tasks.contains { $0.slot == 1 && $0.id != first.id && $0.status.state == .running }
            }
            let replacement = try #require(live(try await node.tasks(service.id)).first { $0.slot == 1 })
            #expect(started.wait(timeout: .seconds(30)) { $0.contains(prefix(replacement, hostname) + "hello from 1\n") },
                    "the replacement of slot 1: \(started.text)")
            #expect(started.text.components(separatedBy: "\n").filter { !$0.isEmpty }.allSatisfy { $0.hasPrefix("chatty.") && $0.contains(" | ") },
                    "every line carries its task's prefix: \(started.text)")

            // Removing the service ends the stream (its containers go, and no task can start any more).
            try await node.client.perform(.delete, "/v1/services/\(service.id)")
            let status = started.waitExit(timeout: .seconds(30))
            #expect(status == 0, "the follower exits by itself once the service is removed (status \(String(describing: status))): \(started.text)")
        } catch {
            follower?.stop()
            await node.close()
            throw error
        }
        follower?.stop()
        await node.close()
    }
}

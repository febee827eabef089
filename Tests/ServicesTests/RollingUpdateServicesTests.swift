import Agent
import ClusterState
@testable import Daemon
import Foundation
import Testing

@Suite("Rolling updates with real containers", .serialized, .enabled(if: DevNode.available, "needs root and busybox-static"))
struct RollingUpdateServicesTests {
    func service(_ node: DevNode, _ id: ObjectID) async throws -> Service {
        try await node.client.call(.get, "/v1/services/\(id)")
    }

    /// Polls until the service's update status is `state`; returns the fewest tasks seen running meanwhile.
    func waitStatus(_ node: DevNode, _ id: ObjectID, _ state: UpdateStatus.State) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(60)
        var fewest = Int.max
        var last: Service?
        while ContinuousClock.now < deadline {
            let current = try await service(node, id)
            last = current
            fewest = min(fewest, running(try await node.tasks(id)))
            if current.updateStatus?.state == state { return fewest }
            try await Task.sleep(for: .milliseconds(30))
        }
        Issue.record("timed out waiting for \(state); status \(String(describing: last?.updateStatus))")
        throw CancellationError()
    }

    @Test("3 replicas update one at a time (never fewer than 2 running) and complete; a failing update rolls back by itself")
    func updateThenAutomaticRollback() async throws {
        let node = try await DevNode()
        do {
            var spec = webSpec("roll", replicas: 3)
            spec.task.environment = ["VERSION=1"]
            spec.update = UpdateConfig(parallelism: 1, failureAction: .rollback, monitorMilliseconds: 500)
            let created = try await node.create(spec)
            try await node.wait(created.id, "3 running") { running($0) == 3 }

            try await node.update(created.id) { $0.task.environment = ["VERSION=2"] }
            let fewest = try await waitStatus(node, created.id, .completed)
            #expect(fewest >= 2, "parallelism 1, stop-first: at most one slot is down at a time (saw \(fewest) running)")
            var tasks = try await node.tasks(created.id)
            let live = tasks.filter { $0.status.state == .running && $0.desiredState == .running }
            #expect(live.count == 3 && live.allSatisfy { $0.template.environment == ["VERSION=2"] })
            #expect(tasks.filter { $0.template.environment == ["VERSION=1"] }.allSatisfy { $0.desiredState == .shutdown && $0.status.state == .shutdown })

            // A command that exits at once: the first new task fails inside the monitor window, and the service goes back.
            try await node.update(created.id) { $0.task.command = ["sh", "-c", "exit 3"] }
            _ = try await waitStatus(node, created.id, .rollbackCompleted)
            let rolledBack = try await service(node, created.id)
            #expect(rolledBack.spec.task.command == ["sleep", "600"])
            #expect(rolledBack.updateStatus?.message == "rollback completed")
            try await node.wait(created.id, "3 running the spec rolled back to") { tasks in
                tasks.filter { $0.status.state == .running && $0.desiredState == .running && $0.template.command == ["sleep", "600"] }.count == 3
            }
            tasks = try await node.tasks(created.id)
            #expect(tasks.contains { $0.template.command == ["sh", "-c", "exit 3"] && $0.status.state == .failed })
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }
}

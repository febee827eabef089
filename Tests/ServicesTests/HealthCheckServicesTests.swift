@testable import Agent
import ClusterState
@testable import Daemon
import Foundation
import Images
import Runtime
import Testing

/// Health checks of service tasks, with real containers: Swarm's rules (a
/// task with a check is `starting` until healthy, an unhealthy one is
/// stopped and failed, and its restart policy replaces it).
@Suite("Service health checks", .serialized, .enabled(if: DevNode.available, "needs root and busybox-static"))
struct HealthCheckServicesTests {
    /// `sleep 600` checked by `test -f /tmp/ready`: the test decides when it
    /// is healthy. Failures before the first success fall in the start
    /// period and do not count; once healthy, 2 in a row make it unhealthy.
    static func checkedSpec(_ name: String) -> Service.Spec {
        var spec = webSpec(name, replicas: 1)
        spec.task.healthCheck = TaskTemplate.HealthCheck(command: ["sh", "-c", "test -f /tmp/ready"], intervalMilliseconds: 100,
                                                         timeoutMilliseconds: 5_000, retries: 2, startPeriodMilliseconds: 600_000)
        return spec
    }

    static func exec(_ node: DevNode, _ task: ServiceTask, _ command: String) throws {
        let result = try node.daemon.agent!.runtime.exec("task-" + task.id.rawValue, ExecSpec(command: ["sh", "-c", command]))
        #expect(result.status == .exited(0), "\(command): \(result.errorOutput)")
    }

    @Test("starting until healthy, then running; unhealthy: stopped, failed and replaced by the restart policy")
    func healthDecidesRunning() async throws {
        let node = try await DevNode()
        do {
            let service = try await node.create(Self.checkedSpec("checked"))
            try await node.wait(service.id, "the task started, its check not yet passed") { tasks in
                tasks.contains { $0.status.state == .starting && $0.status.health == .starting }
            }
            // Checks run every 100 ms and fail (no /tmp/ready), within the start period: still starting, never running.
            try await Task.sleep(for: .milliseconds(600))
            let all = try await node.tasks(service.id)
            #expect(all.count == 1, "no task failed: \(all.map(\.status))")
            let unready = try #require(all.first)
            #expect(unready.status.state == .starting, "a failing check during the first stretch keeps the task starting: \(unready.status)")
            #expect(unready.runningSinceMilliseconds == nil)

            try Self.exec(node, unready, "touch /tmp/ready")
            try await node.wait(service.id, "running once healthy") { tasks in
                tasks.contains { $0.id == unready.id && $0.status.state == .running && $0.status.health == .healthy }
            }
            if let binary = WorkerCluster.shoalBinary {
                let (status, output) = try WorkerCluster.run(binary, ["service", "ps", "checked"], socket: node.directory + "/shoal.sock")
                #expect(status == 0)
                #expect(output.contains("Running") && output.contains("(healthy)"), "service ps shows the health: \(output)")
            }

            // Unhealthy (2 failed checks in a row): the agent stops it, reports it failed, the restart policy replaces it.
            try Self.exec(node, unready, "rm /tmp/ready")
            try await node.wait(service.id, "the unhealthy task failed and a replacement started") { tasks in
                tasks.contains { $0.id == unready.id && $0.status.state == .failed }
                    && tasks.contains { $0.id != unready.id && $0.slot == unready.slot && $0.status.state == .starting }
            }
            let failed = try #require(try await node.tasks(service.id).first { $0.id == unready.id })
            #expect(failed.status.health == .unhealthy)
            #expect(failed.status.error.contains("unhealthy container") && failed.status.error.contains("2 failed health checks"), "\(failed.status.error)")
            #expect(failed.desiredState == .shutdown)
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("a service without a check runs the image's HEALTHCHECK; --no-healthcheck turns it off")
    func imageHealthCheck() async throws {
        let node = try await DevNode()
        do {
            var config = ImageConfig.ContainerConfig()
            config.healthcheck = HealthConfig(test: ["CMD-SHELL", "test -f /tmp/ready"], intervalNanoseconds: 100_000_000,
                                              startPeriodNanoseconds: 600_000_000_000, retries: 1)
            _ = try ImageImporter(store: try ContentStore(root: node.directory + "/images"))
                .importRootfs(tarballAt: try #require(DevNode.busyboxTarball), tag: "shoal.local/checked:latest", containerConfig: config)
            var spec = webSpec("imagecheck", replicas: 1)
            spec.task.image = "shoal.local/checked:latest"
            let service = try await node.create(spec)
            try await node.wait(service.id, "starting on the image's check") { tasks in
                tasks.contains { $0.status.state == .starting && $0.status.health == .starting }
            }
            let task = try #require(try await node.tasks(service.id).first)
            try Self.exec(node, task, "touch /tmp/ready")
            try await node.wait(service.id, "running once the image's check passes") { tasks in
                tasks.contains { $0.id == task.id && $0.status.state == .running && $0.status.health == .healthy }
            }

            spec.name = "unchecked"
            spec.task.healthCheck = .noHealthCheck
            let unchecked = try await node.create(spec)
            try await node.wait(unchecked.id, "running without a check") { tasks in
                tasks.contains { $0.status.state == .running && $0.status.health == nil }
            }
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("an update whose tasks never get healthy fails the rollout, which rolls back to the healthy spec")
    func unhealthyUpdateRollsBack() async throws {
        let node = try await DevNode()
        do {
            var spec = webSpec("rolling", replicas: 2)
            spec.update.failureAction = .rollback
            spec.update.monitorMilliseconds = 2_000
            let service = try await node.create(spec)
            try await node.wait(service.id, "2 running") { running($0) == 2 }
            try await node.update(service.id) { spec in
                spec.task.healthCheck = TaskTemplate.HealthCheck(command: ["false"], intervalMilliseconds: 100, timeoutMilliseconds: 5_000, retries: 1)
            }
            let deadline = ContinuousClock.now + .seconds(60)
            var current: Service = try await node.client.call(.get, "/v1/services/\(service.id)")
            while current.updateStatus?.state != .rollbackCompleted && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                current = try await node.client.call(.get, "/v1/services/\(service.id)")
            }
            #expect(current.updateStatus?.state == .rollbackCompleted, "\(String(describing: current.updateStatus))")
            #expect(current.spec.task.healthCheck == nil, "the spec before the update is back")
            let tasks = try await node.tasks(service.id)
            #expect(tasks.contains { $0.template.healthCheck != nil && $0.status.state == .failed && $0.status.health == .unhealthy })
            #expect(!tasks.contains { $0.template.healthCheck != nil && $0.status.state == .running }, "an unhealthy task never counted as running")
            try await node.wait(service.id, "2 running the old spec") { tasks in
                tasks.filter { $0.status.state == .running && $0.desiredState == .running && $0.template.healthCheck == nil }.count == 2
            }
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("the CLI's --health-* flags and --no-healthcheck are stored in the spec; bad values are refused")
    func flagsStored() async throws {
        let binary = try #require(WorkerCluster.shoalBinary)
        let node = try await DevNode(runsAgent: false)
        do {
            let socket = node.directory + "/shoal.sock"
            var (status, output) = try WorkerCluster.run(binary, ["service", "create", "--detach", "--no-resolve-image", "--name", "probed", "--health-cmd", "wget -q -O- localhost:80",
                                                                  "--health-interval", "2s", "--health-timeout", "500ms", "--health-retries", "4",
                                                                  "--health-start-period", "1m", "shoal.local/busybox:latest", "sleep", "600"], socket: socket)
            #expect(status == 0, "\(output)")
            var service: Service = try await node.client.call(.get, "/v1/services/probed")
            #expect(service.spec.task.healthCheck == TaskTemplate.HealthCheck(command: ["sh", "-c", "wget -q -O- localhost:80"], intervalMilliseconds: 2_000,
                                                                              timeoutMilliseconds: 500, retries: 4, startPeriodMilliseconds: 60_000))
            (status, output) = try WorkerCluster.run(binary, ["service", "update", "--detach", "--health-retries", "2", "probed"], socket: socket)
            #expect(status == 0, "\(output)")
            service = try await node.client.call(.get, "/v1/services/probed")
            #expect(service.spec.task.healthCheck?.retries == 2 && service.spec.task.healthCheck?.intervalMilliseconds == 2_000, "update keeps the rest")
            (status, output) = try WorkerCluster.run(binary, ["service", "update", "--detach", "--no-healthcheck", "probed"], socket: socket)
            #expect(status == 0, "\(output)")
            service = try await node.client.call(.get, "/v1/services/probed")
            #expect(service.spec.task.healthCheck == .noHealthCheck)

            (status, output) = try WorkerCluster.run(binary, ["service", "create", "--detach", "--no-healthcheck", "--health-cmd", "true",
                                                              "shoal.local/busybox:latest"], socket: socket)
            #expect(status != 0 && output.contains("--no-healthcheck cannot be combined with --health-cmd"), "\(output)")
            (status, output) = try WorkerCluster.run(binary, ["service", "create", "--detach", "--health-cmd", "true", "--health-retries", "0",
                                                              "shoal.local/busybox:latest"], socket: socket)
            #expect(status != 0 && output.contains("--health-retries"), "\(output)")
            (status, output) = try WorkerCluster.run(binary, ["service", "create", "--detach", "--health-cmd", "true", "--health-interval", "soon",
                                                              "shoal.local/busybox:latest"], socket: socket)
            #expect(status != 0 && output.contains("--health-interval"), "\(output)")

            // Through the API: a negative interval names the field, and nothing is stored.
            var bad = webSpec("bad", replicas: 1)
            bad.task.healthCheck = TaskTemplate.HealthCheck(command: ["true"], intervalMilliseconds: -1)
            let response = try await node.client.send(.post, "/v1/services", json: bad)
            #expect(response.status == 400 && response.text.contains("health check"), "\(response.text)")
            let services: [Service] = try await node.client.call(.get, "/v1/services")
            #expect(services.map(\.spec.name) == ["probed"])
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("the container's check: the template over the image's HEALTHCHECK over Docker's defaults")
    func checkMerging() {
        let image = HealthConfig(test: ["CMD", "/bin/probe"], intervalNanoseconds: 5_000_000_000, timeoutNanoseconds: 1_000_000_000, retries: 5)
        let imageCheck = HealthCheck(command: ["/bin/probe"], intervalMilliseconds: 5_000, timeoutMilliseconds: 1_000, retries: 5)
        #expect(Agent.healthCheck(nil, image: nil) == nil)
        #expect(Agent.healthCheck(nil, image: image) == imageCheck, "no check in the spec: the image's")
        #expect(Agent.healthCheck(nil, image: HealthConfig(test: ["CMD-SHELL", "test -f /ok"])) == HealthCheck(command: ["/bin/sh", "-c", "test -f /ok"]))
        #expect(Agent.healthCheck(nil, image: HealthConfig(test: ["NONE"])) == nil, "HEALTHCHECK NONE")
        #expect(Agent.healthCheck(.noHealthCheck, image: image) == nil, "--no-healthcheck turns the image's off")
        // Timings alone keep the image's command; the rest of its timings stay.
        #expect(Agent.healthCheck(TaskTemplate.HealthCheck(retries: 1), image: image)
                == HealthCheck(command: ["/bin/probe"], intervalMilliseconds: 5_000, timeoutMilliseconds: 1_000, retries: 1))
        // Timings without any command: nothing to run.
        #expect(Agent.healthCheck(TaskTemplate.HealthCheck(retries: 1), image: nil) == nil)
        // --health-cmd over the image's command, with the image's timings (Docker merges them).
        #expect(Agent.healthCheck(TaskTemplate.HealthCheck(command: ["true"]), image: image)
                == HealthCheck(command: ["true"], intervalMilliseconds: 5_000, timeoutMilliseconds: 1_000, retries: 5))
        // A command alone gets Docker's defaults (30 s, 30 s, 3) when the image has no check.
        let command = Agent.healthCheck(TaskTemplate.HealthCheck(command: ["true"]), image: nil)
        #expect(command == HealthCheck(command: ["true"]))
        #expect(command?.intervalMilliseconds == 30_000 && command?.retries == 3)
    }
}

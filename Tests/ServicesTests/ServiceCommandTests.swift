import TestSupport
import ClusterState
@testable import Daemon
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `shoal service` as a Docker user types it: each flag the issue lists
/// reaches the spec and the task's container; ls, ps, scale, update
/// --force, rm; bad flags are refused with the flag named and nothing
/// stored. The image is imported on the node, not on a registry:
/// `--no-resolve-image` keeps the CLI from asking a registry for it.
@Suite("shoal service with docker's flags", .serialized, .enabled(if: DevNode.available && ShoalBinary.path != nil, "needs root, busybox-static and the shoal binary"))
struct ServiceCommandTests {
    static let image = "shoal.local/busybox:latest"

    func live(_ tasks: [ServiceTask]) -> [ServiceTask] {
        tasks.filter { $0.status.state == .running && $0.desiredState == .running }
    }

    func service(_ node: DevNode, _ name: String) async throws -> Service {
        try await node.client.call(.get, "/v1/services/\(name)")
    }

    @Test("create's flags land in the spec and in the task's container; ls and ps show it; scale, a killed task in ps history, update --force, update's -add/-rm flags, rm")
    func createFlagsThroughRemove() async throws {
        let node = try await DevNode()
        do {
            let hostDirectory = node.directory + "/host-files"
            try FileManager.default.createDirectory(atPath: hostDirectory, withIntermediateDirectories: true)
            try "hello from the host\n".write(toFile: hostDirectory + "/hello", atomically: true, encoding: .utf8)
            let script = "echo \"A=$A B=$B pwd=$(pwd)\"; cat /host/hello; echo x > /data/f && echo volume-ok; "
                + "(echo y > /host/f) 2>/dev/null || echo readonly-ok; exec httpd -f -p 80"
            var result = try await runCLI(node, [
                "service", "create", "--detach", "--no-resolve-image", "--name", "flags", "--replicas", "2",
                "--constraint", "node.role==manager", "--placement-pref", "spread=node.labels.zone", "--max-replicas-per-node", "3",
                "--reserve-memory", "16m", "--limit-memory", "64m", "--reserve-cpu", "0.1", "--limit-cpu", "0.5",
                "--restart-condition", "on-failure", "--restart-delay", "100ms", "--restart-max-attempts", "5", "--restart-window", "1m",
                "--publish", "published=0,target=80", "--mount", "type=volume,src=flagsdata,dst=/data",
                "--mount", "type=bind,src=\(hostDirectory),dst=/host,readonly",
                "-e", "A=1", "--env", "B=two", "--label", "team=fish", "--stop-grace-period", "2s", "--workdir", "/tmp",
                "--health-cmd", "true", "--health-interval", "1s",
                Self.image, "sh", "-c", script,
            ])
            #expect(result.status == 0, "\(result.output)\(result.error)")
            let created = try await service(node, "flags")
            let spec = created.spec
            #expect(spec.mode == .replicated(replicas: 2))
            #expect(spec.labels == ["team": "fish"])
            let task = spec.task
            #expect(task.image == Self.image, "--no-resolve-image: the tag as given")
            #expect(task.command == ["sh"] && task.arguments == ["-c", script], "everything after the image is the command: \(task.command) \(task.arguments)")
            #expect(task.placement.constraints == ["node.role==manager"] && task.placement.preferences == ["spread=node.labels.zone"]
                    && task.placement.maxReplicasPerNode == 3, "\(task.placement)")
            #expect(task.resources == TaskTemplate.Resources(reservedNanoCPUs: 100_000_000, reservedMemoryBytes: 16 << 20,
                                                             limitNanoCPUs: 500_000_000, limitMemoryBytes: 64 << 20), "\(task.resources)")
            #expect(task.restartPolicy == TaskTemplate.RestartPolicy(condition: .onFailure, delayMilliseconds: 100, maxAttempts: 5, windowMilliseconds: 60_000),
                    "\(task.restartPolicy)")
            #expect(task.ports == [TaskTemplate.PublishedPort(publishedPort: 0, targetPort: 80, transportProtocol: .tcp, mode: .host)])
            #expect(task.mounts == [TaskTemplate.Mount(kind: .volume, source: "flagsdata", target: "/data", readOnly: false),
                                    TaskTemplate.Mount(kind: .bind, source: hostDirectory, target: "/host", readOnly: true)], "\(task.mounts)")
            #expect(task.environment == ["A=1", "B=two"])
            #expect(task.stopGracePeriodMilliseconds == 2_000 && task.workingDirectory == "/tmp")
            #expect(task.healthCheck?.command == ["sh", "-c", "true"] && task.healthCheck?.intervalMilliseconds == 1_000)

            try await node.wait(created.id, "2 running and healthy") { live($0).count == 2 }
            let agent = try #require(node.daemon.agent)
            for running in live(try await node.tasks(created.id)) {
                let output = try await taskOutput(node, running.id)
                for expected in ["A=1 B=two pwd=/tmp\n", "hello from the host\n", "volume-ok\n", "readonly-ok\n"] {
                    #expect(output.contains(expected), "task \(running.slot) printed \(output.debugDescription), missing \(expected.debugDescription)")
                }
                let limits = try #require(agent.runtime.container("task-" + running.id.rawValue)).state.spec.limits
                #expect(limits.memoryLimitBytes == 64 << 20 && limits.cpuQuotaMicroseconds == 50_000 && limits.cpuPeriodMicroseconds == 100_000,
                        "--limit-memory 64m and --limit-cpu 0.5 reach the container: \(limits)")
                #expect(running.status.publishedPorts.count == 1 && running.status.publishedPorts[0].publishedPort > 0, "\(running.status.publishedPorts)")
                #expect(running.status.health == .healthy)
            }

            result = try await runCLI(node, ["service", "ls"])
            let row = result.output.split(separator: "\n").first { $0.contains("flags") } ?? ""
            #expect(row.contains("replicated") && row.contains("2/2") && row.contains(Self.image) && row.contains("*:0->80/tcp"), "\(result.output)")

            let hostname = try #require(try await node.client.call(.get, "/v1/nodes", as: [NodeView].self).first?.status.hostname)
            result = try await runCLI(node, ["service", "ps", "flags"])
            var lines = result.output.split(separator: "\n").map(String.init)
            #expect(lines.first?.contains("NODE") == true && lines.first?.contains("DESIRED STATE") == true && lines.first?.contains("CURRENT STATE") == true
                    && lines.first?.contains("ERROR") == true, "\(result.output)")
            #expect(lines.dropFirst().count == 2 && lines.dropFirst().allSatisfy { $0.contains(hostname) && $0.contains("Running") && $0.contains("(healthy)") },
                    "one row per task: node, desired and current state: \(result.output)")
            // The address the port really is on: a dev node publishes on 127.0.0.1, not every interface.
            for running in live(try await node.tasks(created.id)) {
                let port = try #require(running.status.publishedPorts.first)
                #expect(port.hostAddress == "127.0.0.1", "\(port)")
                #expect(lines.contains { $0.contains("flags.\(running.slot) ") && $0.contains("127.0.0.1:\(port.publishedPort)->80/tcp") },
                        "ps shows the bound address: \(result.output)")
            }
            #expect(!lines.contains { $0.contains("*:") }, "\(result.output)")

            // scale waits for convergence, as docker's does.
            result = try await runCLI(node, ["service", "scale", "flags=3"])
            #expect(result.status == 0 && result.output.contains("flags scaled to 3") && result.output.contains("converged"), "\(result.output)\(result.error)")
            #expect(live(try await node.tasks(created.id)).count == 3)

            // A killed container fails (on-failure restarts it); ps shows the failed task under its slot's new one, with the error.
            let victim = try #require(live(try await node.tasks(created.id)).first { $0.slot == 2 })
            try agent.runtime.kill("task-" + victim.id.rawValue)
            try await node.wait(created.id, "slot 2 replaced") { tasks in
                live(tasks).count == 3 && tasks.contains { $0.slot == 2 && $0.id != victim.id && $0.status.state == .running }
            }
            result = try await runCLI(node, ["service", "ps", "flags"])
            lines = result.output.split(separator: "\n").map(String.init)
            let slot2 = lines.filter { $0.contains("flags.2") }
            #expect(slot2.count == 2 && slot2[0].contains("Running") && !slot2[0].contains("\\_"), "the new task first: \(result.output)")
            #expect(slot2.count == 2 && slot2[1].contains(" \\_ flags.2") && slot2[1].contains("Shutdown") && slot2[1].contains("Failed")
                    && slot2[1].contains("signal 9"), "the failed one below it, desired Shutdown, current Failed, with its error: \(result.output)")

            // update --force replaces every task although the spec did not change.
            let before = Set(live(try await node.tasks(created.id)).map(\.id))
            result = try await runCLI(node, ["service", "update", "--detach", "--force", "flags"])
            #expect(result.status == 0, "\(result.error)")
            #expect(try await service(node, "flags").forceUpdate == created.forceUpdate + 1)
            try await node.wait(created.id, timeout: .seconds(90), "3 new tasks after update --force") { tasks in
                let running = live(tasks)
                return running.count == 3 && running.allSatisfy { !before.contains($0.id) && $0.serviceForceUpdate == created.forceUpdate + 1 }
            }

            // update with docker's -add/-rm forms.
            result = try await runCLI(node, ["service", "update", "--detach", "--env-rm", "A", "--env-add", "C=3", "--label-rm", "team", "--label-add", "tier=web",
                                             "--constraint-rm", "node.role==manager", "--constraint-add", "node.role!=worker",
                                             "--placement-pref-rm", "spread=node.labels.zone", "--publish-rm", "80", "--publish-add", "8080:80",
                                             "--mount-rm", "/host", "--limit-memory", "96m", "flags"])
            #expect(result.status == 0, "\(result.error)")
            let updated = try await service(node, "flags").spec
            #expect(updated.task.environment == ["B=two", "C=3"] && updated.labels == ["tier": "web"], "\(updated.task.environment) \(updated.labels)")
            #expect(updated.task.placement.constraints == ["node.role!=worker"] && updated.task.placement.preferences.isEmpty, "\(updated.task.placement)")
            #expect(updated.task.ports == [TaskTemplate.PublishedPort(publishedPort: 8080, targetPort: 80, transportProtocol: .tcp, mode: .host)], "\(updated.task.ports)")
            #expect(updated.task.mounts.map(\.target) == ["/data"] && updated.task.resources.limitMemoryBytes == 96 << 20)

            result = try await runCLI(node, ["service", "rm", "flags"])
            #expect(result.status == 0 && result.output == "flags\n", "\(result.output)\(result.error)")
            #expect(try await node.client.call(.get, "/v1/services", as: [Service].self).isEmpty)
            let deadline = ContinuousClock.now + .seconds(30)
            while !node.taskContainers.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
            #expect(node.taskContainers.isEmpty, "rm removes the task containers: \(node.taskContainers)")
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("--mode global runs one task per node; replicated-job and global-job run to completion and are not restarted; --max-concurrent")
    func modes() async throws {
        let node = try await DevNode()
        do {
            var result = try await runCLI(node, ["service", "create", "--detach", "--no-resolve-image", "--name", "everywhere", "--mode", "global",
                                                 Self.image, "sleep", "600"])
            #expect(result.status == 0, "\(result.error)")
            let global = try await service(node, "everywhere")
            #expect(global.spec.mode == .global)
            try await node.wait(global.id, "the global task running") { live($0).count == 1 && live($0)[0].slot == 0 }
            result = try await runCLI(node, ["service", "scale", "everywhere=2"])
            #expect(result.status != 0 && result.error.contains("scale can only be used with replicated services"), "\(result.error)")

            // No --detach: a job's create returns once created.
            result = try await runCLI(node, ["service", "create", "--no-resolve-image", "--name", "batch", "--mode", "replicated-job", "--replicas", "3",
                                             Self.image, "sh", "-c", "echo done"])
            #expect(result.status == 0 && result.output.contains("job created"), "\(result.output)\(result.error)")
            let job = try await service(node, "batch")
            #expect(job.spec.mode == .replicatedJob(completions: 3, maxConcurrent: 3), "docker's default: as many at once as --replicas: \(job.spec.mode)")
            try await node.wait(job.id, "3 completions") { tasks in tasks.filter { $0.status.state == .complete }.count == 3 }
            try await Task.sleep(for: .seconds(1))
            let jobTasks = try await node.tasks(job.id)
            #expect(jobTasks.count == 3 && jobTasks.allSatisfy { $0.status.state == .complete && $0.status.exitCode == 0 },
                    "completed tasks are not restarted: \(jobTasks.map { "\($0.slot):\($0.status.state)" })")
            for task in jobTasks { #expect(try await taskOutput(node, task.id) == "done\n") }

            result = try await runCLI(node, ["service", "create", "--detach", "--no-resolve-image", "--name", "once", "--mode", "global-job",
                                             Self.image, "true"])
            #expect(result.status == 0, "\(result.error)")
            let globalJob = try await service(node, "once")
            try await node.wait(globalJob.id, "the global job's completion") { tasks in tasks.count == 1 && tasks[0].status.state == .complete }

            result = try await runCLI(node, ["service", "create", "--detach", "--no-resolve-image", "--name", "slow", "--mode", "replicated-job",
                                             "--replicas", "4", "--max-concurrent", "1", Self.image, "true"])
            #expect(result.status == 0, "\(result.error)")
            #expect(try await service(node, "slow").spec.mode == .replicatedJob(completions: 4, maxConcurrent: 1))
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("bad flags and values are refused with the flag or field named, and nothing is stored")
    func badInput() async throws {
        let node = try await DevNode(runsAgent: false)
        do {
            let hostDirectory = node.directory
            let refused: [([String], String)] = [
                (["--replcas", "3"], "unknown flag --replcas"),
                (["--replicas", "three"], "--replicas must be a number"),
                (["--replicas", "-1"], "replicas"),
                (["--mode", "batch"], "--mode must be replicated, global, replicated-job or global-job"),
                (["--mode", "global", "--replicas", "2"], "--replicas can only be used with replicated mode"),
                (["--max-concurrent", "2"], "--max-concurrent can only be used with replicated-job mode"),
                (["--restart-condition", "sometimes"], "--restart-condition must be none, on-failure or any"),
                (["--restart-delay", "soon"], "--restart-delay"),
                (["--reserve-memory", "lots"], "--reserve-memory"),
                (["--limit-cpu", "many"], "--limit-cpu"),
                (["--reserve-memory", "128m", "--limit-memory", "64m"], "the limit is below the reservation"),
                (["--publish", "80:http"], "--publish"),
                (["--publish", "published=70000,target=80"], "ports"),
                (["--mount", "type=tmpfs,dst=/x"], "--mount type must be bind or volume"),
                (["--mount", "type=bind,src=\(hostDirectory),dst=relative"], "mounts"),
                (["--constraint", "node.labels.zone=eu"], "spec.task.placement.constraints"),
                (["--constraint", "node.zone==eu"], "spec.task.placement.constraints"),
                (["--placement-pref", "binpack=node.labels.zone"], "spec.task.placement.preferences"),
                (["--update-order", "sideways"], "--update-order must be stop-first or start-first"),
            ]
            for (flags, message) in refused {
                let result = try await runCLI(node, ["service", "create", "--detach", "--no-resolve-image", "--name", "bad"] + flags + [Self.image, "true"])
                #expect(result.status != 0 && result.error.contains(message), "\(flags): \(result.error)")
            }
            let constraint = try await runCLI(node, ["service", "create", "--detach", "--no-resolve-image", "--constraint", "node.labels.zone=eu", Self.image])
            #expect(constraint.error.contains("no operator; write KEY==VALUE or KEY!=VALUE"), "the scheduler's reason, up front: \(constraint.error)")
            #expect(try await node.client.call(.get, "/v1/services", as: [Service].self).isEmpty, "nothing stored")

            // update refuses the same way and changes nothing.
            var result = try await runCLI(node, ["service", "create", "--detach", "--no-resolve-image", "--name", "good", Self.image, "sleep", "600"])
            #expect(result.status == 0, "\(result.error)")
            let good = try await service(node, "good")
            for flags in [["--replicas", "x"], ["--constraint-add", "node.labels.zone=eu"], ["--mode", "global"], ["--restart-condition", "never"], ["--replcas", "2"]] {
                result = try await runCLI(node, ["service", "update", "--detach"] + flags + ["good"])
                #expect(result.status != 0, "\(flags) accepted: \(result.output)")
            }
            #expect(try await service(node, "good").meta.version == good.meta.version, "no update was written")
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }
}

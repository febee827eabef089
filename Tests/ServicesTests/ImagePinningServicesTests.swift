import TestSupport
import ClusterState
@testable import Daemon
import Foundation
import Images
import Registry
import Testing

/// The CLI against `node`'s socket, on a thread of its own (the daemon it
/// talks to runs in this process, on the cooperative pool a blocking wait
/// would take a thread from): exit status, stdout, stderr.
func runCLI(_ node: DevNode, _ arguments: [String]) async throws -> ProcessOutput {
    let binary = try ShoalBinary.url().path
    let environment = ["SHOAL_HOST": "unix://\(node.directory)/shoal.sock"]
    return try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try runToExit(binary, arguments, environment: environment) })
        }
    }
}

/// What the task's container printed so far, once it printed something.
func taskOutput(_ node: DevNode, _ task: ObjectID) async throws -> String {
    for _ in 0..<100 {
        if let output = node.daemon.agent?.logs(taskID: task)?.standardOutput, !output.isEmpty { return output }
        try await Task.sleep(for: .milliseconds(100))
    }
    return ""
}

@Suite("Service images pinned to digests", .serialized, .enabled(if: DevNode.available, "needs root and busybox-static"))
struct ImagePinningServicesTests {
    /// Pushes a web image that serves `greeting` to `reference`; its manifest digest.
    func push(_ greeting: String, to reference: String, in directory: String, with client: RegistryClient) async throws -> Digest {
        let built = directory + "/build-" + greeting
        try FileManager.default.createDirectory(atPath: built, withIntermediateDirectories: true)
        let (store, manifest) = try makeWebImage(in: built, greeting: greeting)
        let pushed = try await client.push(from: store, manifest: manifest, to: try ImageReference(parsing: reference))
        return pushed.manifest
    }

    /// A DevNode serving its registry, a client that pushes to it and
    /// `REGISTRY/web:1`, for `body`; both closed after it, failed or not.
    func withRegistryNode(_ body: (DevNode, RegistryClient, String) async throws -> Void) async throws {
        let node = try await DevNode(registry: true)
        let pusher = RegistryClient()
        do {
            let registry = try #require(node.daemon.registryAddress)
            try await body(node, pusher, "\(registry)/web:1")
        } catch {
            await pusher.shutdown()
            await node.close()
            throw error
        }
        await pusher.shutdown()
        await node.close()
    }

    func live(_ tasks: [ServiceTask]) -> [ServiceTask] {
        tasks.filter { $0.status.state == .running && $0.desiredState == .running }
    }

    @Test("create pins the tag to its digest: a tag pushed again changes no running or replacement task until update --image resolves it anew")
    func tagPinnedUntilUpdate() async throws {
        try await withRegistryNode { node, pusher, reference in
            let first = try await push("first", to: reference, in: node.directory, with: pusher)

            var spec = webSpec("pinned", replicas: 2)
            spec.task.image = reference
            spec.task.command = ["sh", "-c", "cat /www/index.html; exec sleep 600"]
            let response = try await node.client.send(.post, "/v1/services?resolveImage=true", json: spec)
            #expect(response.status == 201, "\(response.text)")
            #expect(response.headers[ControlAPI.warningHeader] == nil, "the registry answered: no warning")
            let service = try JSONDecoder().decode(Service.self, from: Data(response.body))
            #expect(service.spec.task.image == "\(reference)@\(first)", "the stored spec names the digest")
            try await node.wait(service.id, "2 running the pinned image") { live($0).count == 2 }
            for task in live(try await node.tasks(service.id)) {
                #expect(task.template.image == "\(reference)@\(first)")
                #expect(try await taskOutput(node, task.id) == "first\n")
            }

            // The tag moves. A replacement task still runs the pinned image.
            let second = try await push("second", to: reference, in: node.directory, with: pusher)
            #expect(second != first)
            let victim = try #require(live(try await node.tasks(service.id)).first)
            try node.daemon.agent!.runtime.kill("task-" + victim.id.rawValue)
            try await node.wait(service.id, "the killed task replaced") { tasks in
                live(tasks).count == 2 && tasks.contains { $0.slot == victim.slot && $0.id != victim.id && $0.status.state == .running }
            }
            let replacement = try #require(live(try await node.tasks(service.id)).first { $0.slot == victim.slot })
            #expect(replacement.template.image == "\(reference)@\(first)")
            #expect(try await taskOutput(node, replacement.id) == "first\n", "the replacement runs the digest, not the moved tag")

            // update --image with the same tag resolves it anew: a rolling update to the new digest.
            let current: Service = try await node.client.call(.get, "/v1/services/\(service.id)")
            var updatedSpec = current.spec
            updatedSpec.task.image = reference
            let updateResponse = try await node.client.send(.post, "/v1/services/\(service.id)/update?resolveImage=true",
                                                            json: ServiceUpdateRequest(version: current.meta.version, spec: updatedSpec, force: false))
            #expect(updateResponse.status == 200, "\(updateResponse.text)")
            let updated = try JSONDecoder().decode(Service.self, from: Data(updateResponse.body))
            #expect(updated.spec.task.image == "\(reference)@\(second)")
            try await node.wait(service.id, timeout: .seconds(60), "2 running the new digest") { tasks in
                let running = live(tasks)
                return running.count == 2 && running.allSatisfy { $0.template.image == "\(reference)@\(second)" }
            }
            for task in live(try await node.tasks(service.id)) {
                #expect(try await taskOutput(node, task.id) == "second\n")
            }
        }
    }

    @Test("the CLI pins by default (ls and ps show the tag, inspect the digest); --no-resolve-image keeps the tag; an unreachable registry warns and keeps the tag")
    func cliResolution() async throws {
        try await withRegistryNode { node, pusher, reference in
            let digest = try await push("cli", to: reference, in: node.directory, with: pusher)

            var result = try await runCLI(node, ["service", "create", "--detach", "--name", "pinned", reference, "sleep", "600"])
            #expect(result.status == 0, "\(result.output)\(result.error)")
            #expect(!result.error.contains("warning"), "\(result.error)")
            var service: Service = try await node.client.call(.get, "/v1/services/pinned")
            #expect(service.spec.task.image == "\(reference)@\(digest)")
            result = try await runCLI(node, ["service", "ls"])
            #expect(result.output.contains(" \(reference) ") && !result.output.contains("sha256:"), "ls shows the tag: \(result.output)")
            try await node.wait(service.id, "the pinned task running") { live($0).count == 1 }
            result = try await runCLI(node, ["service", "ps", "pinned"])
            #expect(result.output.contains(" \(reference) ") && !result.output.contains("sha256:"), "ps shows the tag: \(result.output)")
            result = try await runCLI(node, ["service", "inspect", "pinned"])
            #expect(result.output.contains("\(reference)@\(digest)"), "inspect shows the digest: \(result.output)")

            // An update that does not name the image keeps the digest.
            result = try await runCLI(node, ["service", "update", "--detach", "--env-add", "A=1", "pinned"])
            #expect(result.status == 0, "\(result.error)")
            service = try await node.client.call(.get, "/v1/services/pinned")
            #expect(service.spec.task.image == "\(reference)@\(digest)")

            result = try await runCLI(node, ["service", "create", "--detach", "--no-resolve-image", "--name", "loose", reference, "sleep", "600"])
            #expect(result.status == 0, "\(result.error)")
            let loose: Service = try await node.client.call(.get, "/v1/services/loose")
            #expect(loose.spec.task.image == reference, "--no-resolve-image stores the tag as given")
            result = try await runCLI(node, ["service", "update", "--detach", "--image", reference, "--no-resolve-image", "loose"])
            #expect(result.status == 0, "\(result.error)")
            #expect(try await node.client.call(.get, "/v1/services/loose", as: Service.self).spec.task.image == reference)

            // Nothing listens on this loopback port: the service is created with the tag, and the user is told.
            let unreachable = "127.0.0.1:\(try freePort())/web:1"
            result = try await runCLI(node, ["service", "create", "--detach", "--name", "unreachable", "--restart-delay", "60s", unreachable, "sleep", "600"])
            #expect(result.status == 0, "\(result.error)")
            #expect(result.error.contains("warning: image \(unreachable) could not be accessed on a registry to record its digest"), "\(result.error)")
            #expect(result.error.contains("different versions of the image"), "\(result.error)")
            let unpinned: Service = try await node.client.call(.get, "/v1/services/unreachable")
            #expect(unpinned.spec.task.image == unreachable)
        }
    }
}

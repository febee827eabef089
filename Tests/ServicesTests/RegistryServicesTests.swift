@testable import Agent
import ClusterState
@testable import Daemon
import Foundation
import Images
import Net
import Registry
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A busybox image with one more file, so that its layer is not the one
/// every DevNode imports (a pull must download it): built in a store of its
/// own, as a developer's machine would hold it before `shoal image push`.
func makeWebImage(in directory: String, greeting: String) throws -> (store: ContentStore, manifest: Digest) {
    let base = try #require(DevNode.busyboxTarball)
    let script = """
        set -e; mkdir -p \(directory)/extra/www; printf '%s\\n' '\(greeting)' > \(directory)/extra/www/index.html
        cp \(base) \(directory)/web.tar; tar -C \(directory)/extra -rf \(directory)/web.tar ./www ./www/index.html
        """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script]
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    let store = try ContentStore(root: directory + "/developer-images")
    let imported = try ImageImporter(store: store).importRootfs(tarballAt: directory + "/web.tar", tag: "web:1")
    return (store, imported.manifest)
}

@Suite("Services from shoal dev's registry", .serialized, .enabled(if: DevNode.available, "needs root and busybox-static"))
struct RegistryServicesTests {
    @Test("an image pushed to shoal dev's registry runs as a service; a missing one leaves the task rejected with the pull error")
    func pushThenCreate() async throws {
        let node = try await DevNode(registry: true)
        do {
            let registry = try #require(node.daemon.registryAddress)
            let (store, manifest) = try makeWebImage(in: node.directory, greeting: "hello from the registry")
            let client = RegistryClient()
            let reference = try ImageReference(parsing: "\(registry)/web:1")
            _ = try await client.push(from: store, manifest: manifest, to: reference)
            await client.shutdown()
            #expect(try ContentStore(root: node.directory + "/images").resolve(tag: reference.localTag) == nil, "the node starts without the image")

            var spec = webSpec("web", replicas: 2)
            spec.task.image = "\(registry)/web:1"
            spec.task.command = ["sh", "-c", "cat /www/index.html; exec sleep 600"]
            let service = try await node.create(spec)
            try await node.wait(service.id, "2 running from the pulled image") { running($0) == 2 }
            // Pulled into the node's store under its full name, and the task sees the image's own file.
            #expect(try ContentStore(root: node.directory + "/images").resolve(tag: reference.localTag) != nil)
            let task = try #require(try await node.tasks(service.id).first { $0.status.state == .running })
            var output = ""
            for _ in 0..<50 {
                output = node.daemon.agent?.logs(taskID: task.id)?.standardOutput ?? ""
                if !output.isEmpty { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(output == "hello from the registry\n")

            var missing = webSpec("missing", replicas: 1)
            missing.task.image = "\(registry)/nothing-here:1"
            missing.task.restartPolicy.delayMilliseconds = 60_000
            let broken = try await node.create(missing)
            try await node.wait(broken.id, "the task rejected") { tasks in tasks.contains { $0.status.state == .rejected } }
            let rejected = try #require(try await node.tasks(broken.id).first { $0.status.state == .rejected })
            #expect(rejected.status.error.contains("pulling \(registry)/nothing-here:1 from \(registry) failed"))
            #expect(rejected.status.error.contains("shoal image push"), "the error says what to do: \(rejected.status.error)")
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("the agent's registry client holds no connection and runs no pull once the agent stops")
    func agentStopShutsDownRegistryClient() async throws {
        let node = try await DevNode(registry: true)
        do {
            let registry = try #require(node.daemon.registryAddress)
            let (store, manifest) = try makeWebImage(in: node.directory, greeting: "pulled once")
            let pusher = RegistryClient()
            _ = try await pusher.push(from: store, manifest: manifest, to: try ImageReference(parsing: "\(registry)/web:1"))
            await pusher.shutdown()
            var spec = webSpec("web", replicas: 1)
            spec.task.image = "\(registry)/web:1"
            let service = try await node.create(spec)
            try await node.wait(service.id, "the task running from the pulled image") { running($0) == 1 }
            let agent = try #require(node.daemon.agent)
            let images = try #require(agent.images as? RegistryImageSource)
            #expect(images.client.idleConnectionCount > 0, "the pull left its keep-alive connection in the pool")
            await node.daemon.stopAgent()
            #expect(images.client.idleConnectionCount == 0, "the stopped agent's registry connections are closed")
            #expect(images.pullsInFlight == 0)
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("a tag pushed again is pulled again when a task starts; with the registry gone the stored copy runs")
    func repushedTagIsPulledAgain() async throws {
        let directory = NSTemporaryDirectory() + "shoal-repush-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory + "/node", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try RegistryServer(store: try ContentStore(root: directory + "/registry"), configuration: .init())
        let address = try server.listen(on: .loopbackIPv4())
        let reference = "\(address)/web:1"
        let pusher = RegistryClient()
        func push(_ greeting: String) async throws {
            let built = directory + "/" + greeting
            try FileManager.default.createDirectory(atPath: built, withIntermediateDirectories: true)
            let (store, manifest) = try makeWebImage(in: built, greeting: greeting)
            _ = try await pusher.push(from: store, manifest: manifest, to: try ImageReference(parsing: reference))
        }
        func served(_ image: PreparedImage) -> String? {
            image.lowerDirectories.lazy.compactMap { try? String(contentsOfFile: $0 + "/www/index.html", encoding: .utf8) }.first
        }
        let nodeImages = try LocalImageSource(store: try ContentStore(root: directory + "/node/images"), layerCacheDirectory: directory + "/node/layers")
        let source = RegistryImageSource(local: nodeImages)
        do {
            try await push("first")
            #expect(served(try await source.prepare(reference: reference)) == "first\n")
            #expect(served(try await source.prepare(reference: reference)) == "first\n", "the tag has not moved: the stored image")
            try await push("second")
            #expect(served(try await source.prepare(reference: reference)) == "second\n", "the tag was pushed again: the new image")
            // A restarted agent remembers what it pulled (and still checks the tag).
            let restarted = RegistryImageSource(local: nodeImages)
            #expect(restarted.pulledDigest(try ImageReference(parsing: reference).localTag) != nil)
            await server.shutdown(gracePeriod: .milliseconds(300))
            #expect(served(try await restarted.prepare(reference: reference)) == "second\n", "registry gone: the stored copy runs")
            await restarted.shutdown()
        } catch {
            await server.shutdown(gracePeriod: .milliseconds(300))
            throw error
        }
        await source.shutdown()
        await pusher.shutdown()
    }

    @Test("an image prepared before is served again without reading its manifest while its layers stay unpacked, and prepared anew once they are gone")
    func preparedImageIsKept() async throws {
        let directory = NSTemporaryDirectory() + "shoal-prepared-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (store, manifest) = try makeWebImage(in: directory, greeting: "kept")
        let images = try LocalImageSource(store: store, layerCacheDirectory: directory + "/layers")
        let first = try await images.prepare(reference: "web:1")
        // From here on the manifest cannot be read: only the image prepared before can serve.
        let manifestFile = URL(fileURLWithPath: store.path(for: manifest))
        let saved = try Data(contentsOf: manifestFile)
        try Data("not a manifest".utf8).write(to: manifestFile)
        let again = try await images.prepare(reference: "web:1")
        #expect(again.lowerDirectories == first.lowerDirectories && again.manifestDigest == first.manifestDigest && again.reference == "web:1")
        // Its layer gone, the image is prepared anew: from the manifest, unpacked again.
        try FileManager.default.removeItem(atPath: first.lowerDirectories[0])
        await #expect(throws: (any Error).self) { try await images.prepare(reference: "web:1") }
        try saved.write(to: manifestFile)
        let anew = try await images.prepare(reference: "web:1")
        #expect(anew.lowerDirectories == first.lowerDirectories)
        #expect(try String(contentsOfFile: first.lowerDirectories[0] + "/www/index.html", encoding: .utf8) == "kept\n")
    }

    @Test("tasks that start together share one pull and hear its progress as layers done")
    func sharedPullWithProgress() async throws {
        let directory = NSTemporaryDirectory() + "shoal-pull-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (developerStore, manifest) = try makeWebImage(in: directory, greeting: "shared")
        let server = try RegistryServer(store: try ContentStore(root: directory + "/registry"))
        let address = try server.listen(on: .loopbackIPv4())
        let pusher = RegistryClient()
        _ = try await pusher.push(from: developerStore, manifest: manifest, to: try ImageReference(parsing: "\(address)/web:1"))
        await pusher.shutdown()

        let nodeStore = try ContentStore(root: directory + "/node-images")
        let source = RegistryImageSource(local: try LocalImageSource(store: nodeStore, layerCacheDirectory: directory + "/layers"))
        let lines = LineLog()
        async let first = source.prepare(reference: "\(address)/web:1") { lines.record("a: " + $0) }
        async let second = source.prepare(reference: "\(address)/web:1") { lines.record("b: " + $0) }
        let images = try await [first, second]
        #expect(images.allSatisfy { $0.reference == "\(address)/web:1" && $0.lowerDirectories.count == 1 })
        // Whoever joined the pull heard it end (a caller that came after it ended found the image stored).
        for caller in ["a", "b"] {
            let heard = lines.all.filter { $0.hasPrefix(caller + ": ") }
            #expect(heard.isEmpty || heard.last == "\(caller): pulling 1/1 layers", "\(lines.all)")
        }
        #expect(lines.all.contains("a: pulling 1/1 layers"), "\(lines.all)")
        #expect(lines.all.contains { $0.hasSuffix("pulling 0/1 layers") }, "the layer is announced before it is done: \(lines.all)")
        // Once pulled, the store has it: no second pull even with the registry gone.
        await server.shutdown()
        await source.client.shutdown()
        let again = try await source.prepare(reference: "\(address)/web:1")
        #expect(again.lowerDirectories == images[0].lowerDirectories)
    }

    @Test("a second registry on a taken port fails the start and names --registry-port")
    func registryPortTaken() async throws {
        let holder = try TCPListener.bind(.loopbackIPv4(), group: .shared)
        defer { holder.close() }
        let directory = NSTemporaryDirectory() + "shoal-port-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var settings = DaemonSettings(dataDirectory: directory, socketPath: directory + "/shoal.sock")
        settings.runsAgent = false
        settings.registryListenAddress = holder.localAddress
        let daemon = Daemon(settings: settings)
        do {
            try await daemon.start()
            Issue.record("started with its registry port taken")
            await daemon.stop()
        } catch {
            let text = "\(error)"
            #expect(text.contains("\(holder.localAddress)") && text.contains("in use") && text.contains("--registry-port"), "\(text)")
        }
        #expect(!FileManager.default.fileExists(atPath: settings.socketPath), "nothing else started")
    }
}

final class LineLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func record(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

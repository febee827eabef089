import ClusterState
@testable import Daemon
import Foundation
import HTTP
import Net
import Testing
import TestSupport

/// busybox httpd on container port 80 answering "<name> slot N".
func httpdSpec(_ name: String, replicas: Int, published: Int) -> Service.Spec {
    var spec = webSpec(name, replicas: replicas)
    spec.task.command = ["sh", "-c", "mkdir -p /www && echo \"\(name) slot $SHOAL_TASK_SLOT\" > /www/index.html && exec httpd -f -p 80 -h /www"]
    spec.task.ports = [TaskTemplate.PublishedPort(publishedPort: published, targetPort: 80, mode: .host)]
    return spec
}

/// The body of `http://host:port/`, retried while the server comes up.
func fetch(_ host: String, _ port: Int, timeout: Duration = .seconds(10)) async throws -> String {
    let client = HTTPClient()
    defer { Task { await client.shutdown() } }
    let deadline = ContinuousClock.now + timeout
    while true {
        do {
            let (response, body) = try await client.get("http://\(host):\(port)/")
            if response.status.code == 200 { return String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        } catch where ContinuousClock.now < deadline {
        }
        guard ContinuousClock.now < deadline else { throw CancellationError() }
        try await Task.sleep(for: .milliseconds(100))
    }
}

/// Published ports of service tasks on the node bridge, with real containers.
@Suite("Service published ports", .serialized, .enabled(if: DevNode.available, "needs root and busybox-static"))
struct PublishedPortServicesTests {
    @Test("3 replicas listen on one container port, each published on a free host port of its own; a fixed host port runs once per node")
    func replicasShareTheContainerPort() async throws {
        let node = try await DevNode()
        do {
            let service = try await node.create(httpdSpec("web", replicas: 3, published: 0))
            try await node.wait(service.id, "3 running") { running($0) == 3 }
            let tasks = try await node.tasks(service.id).filter { $0.status.state == .running }
            let ports = tasks.flatMap(\.status.publishedPorts)
            #expect(ports.count == 3 && ports.allSatisfy { $0.targetPort == 80 && $0.publishedPort > 0 }, "\(ports)")
            #expect(Set(ports.map(\.publishedPort)).count == 3, "a host port each: \(ports)")
            for task in tasks {
                let port = try #require(task.status.publishedPorts.first).publishedPort
                #expect(try await fetch("127.0.0.1", port) == "web slot \(task.slot)")
            }

            // A fixed published port: one task per node can hold it (Swarm's mode=host); the second replica waits with the reason.
            let fixedPort = Int(try freePort())
            let fixed = try await node.create(httpdSpec("fixed", replicas: 2, published: fixedPort))
            try await node.wait(fixed.id, "one running, one pending on the port") { tasks in
                running(tasks) == 1 && tasks.contains { $0.status.state == .pending && $0.status.message.contains("\(fixedPort)") }
            }
            let holder = try #require(try await node.tasks(fixed.id).first { $0.status.state == .running })
            #expect(holder.status.publishedPorts == [TaskTemplate.PublishedPort(publishedPort: fixedPort, targetPort: 80, mode: .host, hostAddress: "127.0.0.1")])
            #expect(try await fetch("127.0.0.1", fixedPort) == "fixed slot \(holder.slot)")
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }

    @Test("a UDP port publishes in mode=host too: each replica's datagrams reach it through its own free host port",
          .enabled(if: UDPTestPeer.echoExecutable != nil, "needs shoal-test-udp-echo beside the tests (swift build --build-tests)"))
    func udpPort() async throws {
        let node = try await DevNode()
        do {
            // The static echo server, bind-mounted into the busybox image (whose nc has no -u).
            let helpers = node.directory + "/helpers"
            try FileManager.default.createDirectory(atPath: helpers, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: try #require(UDPTestPeer.echoExecutable), toPath: helpers + "/udp-echo")
            var spec = webSpec("echo", replicas: 2)
            spec.task.command = ["/helpers/udp-echo", "5353"]
            spec.task.mounts = [TaskTemplate.Mount(kind: .bind, source: helpers, target: "/helpers", readOnly: true)]
            spec.task.ports = [TaskTemplate.PublishedPort(publishedPort: 0, targetPort: 5353, transportProtocol: .udp, mode: .host)]
            let service = try await node.create(spec)
            try await node.wait(service.id, "2 running") { running($0) == 2 }
            let tasks = try await node.tasks(service.id).filter { $0.status.state == .running }
            for task in tasks {
                let port = try #require(task.status.publishedPorts.first, "\(task.status)")
                #expect(port.transportProtocol == .udp && port.targetPort == 5353 && port.publishedPort > 0, "\(port)")
                let answer = try UDPTestPeer().exchange("slot \(task.slot)", port: UInt16(port.publishedPort), within: .seconds(30))
                #expect(answer?.hasPrefix("slot \(task.slot) from ") == true, "\(String(describing: answer))")
            }
        } catch {
            await node.close()
            throw error
        }
        await node.close()
    }
}

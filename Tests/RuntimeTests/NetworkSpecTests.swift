import Foundation
import Runtime
import Testing

@Suite("Network spec")
struct NetworkSpecTests {
    @Test func subnetsParseAndOverlap() throws {
        let subnet = try #require(IPv4Subnet("10.88.0.0/16"))
        #expect(subnet.description == "10.88.0.0/16")
        #expect(subnet.contains(IPv4Subnet.parseAddress("10.88.255.254")!))
        #expect(!subnet.contains(IPv4Subnet.parseAddress("10.89.0.1")!))
        #expect(subnet.overlaps(IPv4Subnet("10.88.3.0/24")!))
        #expect(IPv4Subnet("10.88.3.0/24")!.overlaps(subnet))
        #expect(subnet.overlaps(IPv4Subnet("10.0.0.0/8")!))
        #expect(!subnet.overlaps(IPv4Subnet("10.89.0.0/24")!))
        for bad in ["10.88.0.1/16", "10.88.0.0", "10.88.0/16", "10.88.0.0/33", "256.0.0.0/8", "a.b.c.d/8", "10.88.0.0/-1"] {
            #expect(IPv4Subnet(bad) == nil, "\(bad)")
        }
        let bridge = BridgeConfiguration()
        #expect(bridge.name == "shoal0" && IPv4Subnet.format(bridge.gateway) == "10.88.0.1")
    }

    @Test func portsAndLinksAreRefusedWithClearErrors() throws {
        let directory = NSTemporaryDirectory() + "shoal-network-spec-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let runtime = try ContainerRuntime(configuration: .init(stateDirectory: directory + "/state", cgroupParent: "shoal-test-unused"))
        func refusal(_ configure: (inout ContainerSpec) -> Void) -> String {
            var spec = ContainerSpec(id: "c", rootFilesystem: .directory(directory), command: ["true"])
            configure(&spec)
            do {
                try runtime.create(spec)
                return "created"
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal { $0.publishedPorts = [PortMapping(hostPort: 8080, containerPort: 80)] }
            .contains("published ports need --network bridge"))
        #expect(refusal { $0.network = .host; $0.links = [ContainerLink(container: "web")] }
            .contains("links need --network bridge"))
        #expect(refusal {
            $0.network = .bridge
            $0.publishedPorts = [PortMapping(hostPort: 53, containerPort: 53, transport: .udp), PortMapping(hostPort: 53, containerPort: 54, transport: .udp)]
        }.contains("0.0.0.0:53/udp is published twice"))
        #expect(refusal { $0.network = .bridge; $0.publishedPorts = [PortMapping(hostAddress: "localhost", hostPort: 1, containerPort: 1)] }
            .contains("must be an IPv4 address"))
        #expect(refusal {
            $0.network = .bridge
            $0.publishedPorts = [PortMapping(hostPort: 8080, containerPort: 80), PortMapping(hostPort: 8080, containerPort: 81)]
        }.contains("published twice"))
        #expect(refusal { $0.network = .bridge; $0.links = [ContainerLink(container: "web", alias: "bad alias")] }
            .contains("must be a host name"))
        #expect(runtime.list().isEmpty, "nothing recorded for a refused spec")
    }

    @Test func badBridgeConfigurationIsRefusedAtStartUp() throws {
        let directory = NSTemporaryDirectory() + "shoal-network-spec-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (bridge, expected) in [
            (BridgeConfiguration(name: "a-name-longer-than-15"), "is not an interface name"),
            (BridgeConfiguration(name: "../etc"), "is not an interface name"),
            (BridgeConfiguration(name: "shoaltiny", subnet: IPv4Subnet("10.89.0.0/31")!), "use a /30 or wider"),
        ] {
            let error = #expect(throws: RuntimeError.self) {
                _ = try ContainerRuntime(configuration: .init(stateDirectory: directory, cgroupParent: "shoal-test-unused", bridge: bridge))
            }
            #expect("\(error.map { "\($0)" } ?? "")".contains(expected))
        }
    }

    @Test func stateWrittenBeforePortsAndLinksStillDecodes() throws {
        let spec = ContainerSpec(id: "old", rootFilesystem: .directory("/"), command: ["true"])
        var object = try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(spec)) as? [String: Any])
        object["publishedPorts"] = nil
        object["links"] = nil
        let decoded = try JSONDecoder().decode(ContainerSpec.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(decoded == spec)
    }
}

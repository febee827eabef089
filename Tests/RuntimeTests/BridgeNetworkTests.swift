import TestSupport
import Foundation
@testable import Runtime
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Containers on a test bridge (shoaltest<pid> on 10.89.<pid % 250>.0/24,
/// never the shoal0 of a `shoal dev` on this machine); each test removes its
/// containers (veths, leases, listeners) and the bridge.
@Suite("Bridge networking", .serialized, .enabled(if: TestImage.available, "needs root and busybox-static"),
       .timeLimit(.minutes(5)))
struct BridgeNetworkTests {
    static let webScript = "mkdir -p /tmp/www && echo hello-from-web > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"

    @Test func containersReachEachOtherByAddressAndLinkAlias() throws {
        let fixture = try RuntimeFixture()
        defer { Self.close(fixture) }
        let web = try fixture.runtime.run(fixture.spec("web", ["sh", "-c", Self.webScript]) { $0.network = .bridge })
        let attachment = try #require(web.state.network)
        #expect(fixture.bridge.subnet.contains(try #require(IPv4Subnet.parseAddress(attachment.address))))
        #expect(attachment.gateway == IPv4Subnet.format(fixture.bridge.gateway) && attachment.prefixLength == 24)
        #expect(attachment.bridge == fixture.bridge.name)
        let hostInterface = try #require(attachment.hostInterface)
        #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(hostInterface)/brport"), "veth is a port of the bridge")
        let refusal = #expect(throws: RuntimeError.self) { try fixture.runtime.removeBridge() }
        #expect("\(refusal.map { "\($0)" } ?? "")".contains("containers web are attached to it"))
        // exec joins the container's network namespace.
        let inside = try fixture.runtime.exec("web", ExecSpec(command: ["sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'"]))
        #expect(String(decoding: inside.standardOutput, as: UTF8.self) == "\(attachment.address)/24\n")
        // An IPv4-only network: no IPv6 inside (as Docker, CVE-2024-32473).
        if FileManager.default.fileExists(atPath: "/proc/sys/net/ipv6") {
            let ipv6 = try fixture.runtime.exec("web", ExecSpec(command: ["sh", "-c", "cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6; grep -c eth0 /proc/net/if_inet6"]))
            #expect(String(decoding: ipv6.standardOutput, as: UTF8.self) == "1\n0\n")
            // The host end, a bridge port, makes no IPv6 address of its own.
            let generation = try String(contentsOfFile: "/proc/sys/net/ipv6/conf/\(hostInterface)/addr_gen_mode", encoding: .utf8)
            #expect(generation == "1\n")
            let hostAddresses = try String(contentsOfFile: "/proc/net/if_inet6", encoding: .utf8)
            #expect(!hostAddresses.contains(hostInterface), "\(hostAddresses)")
        }

        let started = try fixture.runtime.run(fixture.spec("client", ["sh", "-c", """
            for i in $(seq 100); do timeout 5 wget -q -O - http://\(attachment.address)/ && break; sleep 0.2; done
            timeout 10 wget -q -O - http://webalias/
            grep -w webalias /etc/hosts
            cat /etc/hostname
            ip -4 -o addr show eth0 | awk '{print $4}'
            ip route | grep -c default
            ls /sys/class/net | sort | tr '\\n' ' '
            """]) {
            $0.network = .bridge
            $0.hostname = "client-box"
            $0.links = [ContainerLink(container: "web", alias: "webalias")]
        })
        let clientInterface = try #require(started.state.network?.hostInterface)
        let status = started.wait(timeout: .seconds(60))
        let logs = try fixture.runtime.logs("client")
        let client = (status: status, output: logs.standardOutput, error: logs.standardError, state: started.state)
        #expect(client.status == .exited(0), "\(client.error)")
        let lines = client.output.split(separator: "\n").map(String.init)
        let own = try #require(client.state.network?.address)
        #expect(lines == [
            "hello-from-web", "hello-from-web", "\(attachment.address)\twebalias web", "client-box",
            "\(own)/24", "0", "eth0 lo ",
        ], "\(client.output) \(client.error)")
        #expect(own != attachment.address)
        let hosts = try String(contentsOfFile: fixture.runtime.container("client")!.directory + "/hosts", encoding: .utf8)
        #expect(hosts.hasPrefix("127.0.0.1\tlocalhost\n") && hosts.hasSuffix("\(own)\tclient-box client\n"), "\(hosts)")
        // The exited client's veth goes with it; its address stays leased until delete.
        #expect(fixture.eventually {
            !FileManager.default.fileExists(atPath: "/sys/class/net/\(clientInterface)") && started.state.network?.hostInterface == nil
        })
        #expect(started.state.network?.address == own)
    }

    @Test func publishedPortAnswersCurlFromTheHostAndSurvivesARestart() throws {
        let fixture = try RuntimeFixture()
        defer { Self.close(fixture) }
        let explicitPort = try freePort()
        let web = try fixture.runtime.run(fixture.spec("published", ["sh", "-c", Self.webScript]) {
            $0.network = .bridge
            $0.publishedPorts = [
                PortMapping(hostAddress: "127.0.0.1", hostPort: explicitPort, containerPort: 80),
                PortMapping(hostAddress: "127.0.0.1", hostPort: 0, containerPort: 80),  // -P: a free port
            ]
        })
        let ports = try #require(web.state.network?.ports)
        #expect(ports.count == 2 && ports[0].hostPort == explicitPort && ports[1].hostPort != 0, "\(ports)")
        for port in ports {
            #expect(Self.curl(port.hostPort, within: .seconds(30)) == "hello-from-web\n", "port \(port.hostPort)")
        }
        // A body larger than the proxy's buffers arrives whole.
        let big = try fixture.runtime.exec("published", ExecSpec(command: ["sh", "-c", "head -c 3000000 /dev/urandom > /tmp/www/big && md5sum < /tmp/www/big"]))
        let digest = String(decoding: big.standardOutput, as: UTF8.self).split(separator: " ").first.map(String.init)
        let fetched = Self.run("/bin/sh", ["-c", "curl -s -f -m 30 http://127.0.0.1:\(ports[0].hostPort)/big | md5sum"])
        #expect(digest != nil && fetched?.split(separator: " ").first.map(String.init) == digest, "\(String(describing: fetched))")
        // A second container cannot take a port in use: clear error, nothing left running.
        let error = #expect(throws: RuntimeError.self) {
            try fixture.runtime.run(fixture.spec("clash", ["sh", "-c", Self.webScript]) {
                $0.network = .bridge
                $0.publishedPorts = [PortMapping(hostAddress: "127.0.0.1", hostPort: explicitPort, containerPort: 80)]
            })
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains("127.0.0.1:\(explicitPort): it is already in use"))
        #expect(fixture.runtime.container("clash")?.state.status == .exited)

        // The daemon restarts: the container keeps running, its ports are bound again.
        try fixture.reopen()
        #expect(fixture.runtime.container("published")?.state.status == .running)
        #expect(Self.curl(ports[1].hostPort, within: .seconds(30)) == "hello-from-web\n")

        let address = try #require(web.state.network?.address)
        let veth = try #require(fixture.runtime.container("published")?.state.network?.hostInterface)
        try fixture.runtime.delete("published", force: true)
        #expect(Self.curl(ports[1].hostPort, within: .zero) == nil, "listener closed with the container")
        fixture.runtime.awaitCleanup()
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/\(veth)"), "veth removed with the container")
        #expect(!FileManager.default.fileExists(atPath: fixture.stateDirectory + "/network/\(fixture.bridge.name)/leases/\(address)"),
                "lease released")
    }

    @Test(.enabled(if: UDPTestPeer.echoExecutable != nil, "needs shoal-test-udp-echo beside the tests (swift build --build-tests)"))
    func publishedUDPPortRelaysEachClientsDatagrams() throws {
        let fixture = try RuntimeFixture()
        defer { Self.close(fixture) }
        // The static echo server, mounted into the busybox image (whose nc has no -u).
        let helpers = fixture.stateDirectory + "-helpers"
        try FileManager.default.createDirectory(atPath: helpers, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: helpers) }
        try FileManager.default.copyItem(atPath: try #require(UDPTestPeer.echoExecutable), toPath: helpers + "/udp-echo")
        let echo = try fixture.runtime.run(fixture.spec("udp", ["/helpers/udp-echo", "5353"]) {
            $0.network = .bridge
            $0.mounts = [BindMount(source: helpers, destination: "/helpers", readOnly: true)]
            $0.publishedPorts = [PortMapping(hostAddress: "127.0.0.1", hostPort: 0, containerPort: 5353, transport: .udp)]
        })
        let published = try #require(echo.state.network?.ports.first)
        #expect(published.transport == .udp && published.hostPort != 0 && published.containerPort == 5353, "\(published)")
        let gateway = IPv4Subnet.format(fixture.bridge.gateway)
        let first = try UDPTestPeer()
        let second = try UDPTestPeer()
        let one = first.exchange("one", port: published.hostPort, within: .seconds(30))
        let two = second.exchange("two", port: published.hostPort)
        // The container sees the proxy's bridge-side address, one session (source port) per client.
        #expect(one?.hasPrefix("one from \(gateway):") == true, "\(String(describing: one)) \((try? fixture.runtime.logs("udp")).map { "\($0)" } ?? "")")
        #expect(two?.hasPrefix("two from \(gateway):") == true, "\(String(describing: two))")
        #expect(UDPTestPeer.sender(one) != UDPTestPeer.sender(two))
        let again = first.exchange("again", port: published.hostPort)
        #expect(UDPTestPeer.sender(again) == UDPTestPeer.sender(one), "\(String(describing: again))")

        try fixture.runtime.delete("udp", force: true)
        #expect(first.exchange("gone", port: published.hostPort, within: .milliseconds(600)) == nil, "relay closed with the container")
    }

    @Test func leasesAreUniqueUnderConcurrencyKeptAcrossRestartAndReleased() throws {
        let fixture = try RuntimeFixture()
        defer { Self.close(fixture) }
        let count = 24
        let runtime = fixture.runtime
        let specs = (0..<count).map { index in fixture.spec("lease-\(index)", ["true"]) { $0.network = .bridge } }
        let errors = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: count) { index in
            do { try runtime.create(specs[index]) } catch { errors.withLock { $0.append("\(error)") } }
        }
        #expect(errors.withLock { $0 }.isEmpty, "\(errors.withLock { $0 })")
        let addresses = fixture.runtime.list().compactMap { $0.network?.address }
        #expect(addresses.count == count && Set(addresses).count == count, "\(addresses.sorted())")
        let subnet = fixture.bridge.subnet
        #expect(!addresses.contains(IPv4Subnet.format(subnet.network + 1)) && !addresses.contains(IPv4Subnet.format(subnet.broadcast)),
                "gateway and broadcast are not leased")

        // A lease nobody's state holds (a crash between lease and state write) is released at restart.
        let leaseDirectory = fixture.stateDirectory + "/network/\(fixture.bridge.name)/leases"
        let orphan = IPv4Subnet.format(fixture.bridge.subnet.broadcast - 1)
        try "ghost".write(toFile: leaseDirectory + "/" + orphan, atomically: false, encoding: .utf8)
        try fixture.reopen()
        #expect(fixture.runtime.list().compactMap { $0.network?.address }.sorted() == addresses.sorted())
        #expect(!FileManager.default.fileExists(atPath: leaseDirectory + "/" + orphan))
        let next = try fixture.runtime.create(fixture.spec("after-restart", ["true"]) { $0.network = .bridge })
        #expect(!addresses.contains(try #require(next.state.network?.address)))

        for state in fixture.runtime.list() { try fixture.runtime.delete(state.id) }
        fixture.runtime.awaitCleanup()
        let leases = (try? FileManager.default.contentsOfDirectory(atPath: leaseDirectory)) ?? []
        #expect(leases.isEmpty, "\(leases)")
    }

    @Test func aDeletedContainersAddressStaysLeasedUntilItsVethIsGoneEvenAcrossARestart() throws {
        // Long enough that only the namespace going frees the veth here.
        let fixture = try RuntimeFixture(vethRemovalTimeout: .seconds(600))
        defer { Self.close(fixture) }
        let container = try fixture.runtime.run(fixture.spec("held", ["sleep", "600"]) { $0.network = .bridge })
        let attachment = try #require(container.state.network)
        let veth = try #require(attachment.hostInterface)
        let pid = try #require(container.state.pid)
        // This test holds the container's network namespace, as an nsenter would.
        let namespace = open("/proc/\(pid)/ns/net", O_RDONLY | O_CLOEXEC)
        try #require(namespace >= 0)
        var held = true
        defer { if held { Glibc.close(namespace) } }
        let lease = fixture.stateDirectory + "/network/\(fixture.bridge.name)/leases/\(attachment.address)"

        try fixture.runtime.delete("held", force: true)
        // Gone at once for its callers...
        #expect(fixture.runtime.container("held") == nil && fixture.runtime.list().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: fixture.stateDirectory + "/containers/held"))
        let next = try fixture.runtime.create(fixture.spec("held", ["true"]) { $0.network = .bridge })
        #expect(next.state.network?.address != attachment.address, "the old address is still taken")
        try fixture.runtime.delete("held")
        // ...while its veth lives, its address stays leased, also for a restarted runtime.
        #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(veth)"))
        #expect(FileManager.default.fileExists(atPath: lease))
        try fixture.reopen()
        #expect(FileManager.default.fileExists(atPath: lease), "a restart keeps the lease of an unfinished removal")
        #expect(fixture.runtime.list().isEmpty)

        // The namespace goes, the kernel deletes the veth, the restarted runtime finishes the removal.
        Glibc.close(namespace)
        held = false
        fixture.runtime.awaitCleanup()
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/\(veth)"))
        #expect(!FileManager.default.fileExists(atPath: lease), "lease released once the veth is gone")
        let removing = (try? FileManager.default.contentsOfDirectory(atPath: fixture.stateDirectory + "/removing")) ?? ["unreadable"]
        #expect(removing.isEmpty, "\(removing)")
        #expect(try fixture.runtime.create(fixture.spec("again", ["true"]) { $0.network = .bridge }).state.network?.address != nil)
    }

    @Test func warmNamespacesWaitOnTheBridgeAndAStartTakesOne() throws {
        let fixture = try RuntimeFixture()
        defer { Self.close(fixture) }
        let ports = "/sys/class/net/\(fixture.bridge.name)/brif"
        func bridgePorts() -> Set<String> { Set((try? FileManager.default.contentsOfDirectory(atPath: ports)) ?? []) }
        let warm = fixture.runtime.configuration.warmNetworkNamespaces
        try #require(warm > 0)
        // The first bridge container claims the bridge: the pool fills.
        try fixture.runtime.create(fixture.spec("first", ["sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'; ls /sys/class/net | sort | tr '\\n' ' '"]) {
            $0.network = .bridge
        })
        #expect(fixture.eventually { bridgePorts().count == warm }, "\(bridgePorts())")
        let ready = bridgePorts()
        try fixture.runtime.start("first")
        let container = try #require(fixture.runtime.container("first"))
        let veth = try #require(container.state.network?.hostInterface)
        #expect(ready.contains(veth), "the start took a warm namespace")
        #expect(container.wait(timeout: .seconds(60)) == .exited(0))
        let address = try #require(container.state.network?.address)
        let output = try fixture.runtime.logs("first").standardOutput
        #expect(output == "\(address)/24\neth0 lo ", "\(output)")
        // Refilled; a runtime that detaches takes its warm namespaces (and their veths) with it.
        #expect(fixture.eventually { bridgePorts().subtracting([veth]).count == warm }, "\(bridgePorts())")
        fixture.runtime.detach()
        #expect(fixture.eventually { bridgePorts().isEmpty }, "\(bridgePorts())")
    }

    @Test func subnetOverlappingAHostRouteIsRefused() throws {
        let fixture = try RuntimeFixture()
        defer { Self.close(fixture) }
        // Bring the test bridge (a /24) up: its route is now the host's.
        let first = try fixture.run("first", ["true"]) { $0.network = .bridge }
        #expect(first.status == .exited(0))
        let upperHalf = IPv4Subnet(network: fixture.bridge.subnet.network + 128, prefixLength: 25)
        let overlapping = try RuntimeFixture(bridge: BridgeConfiguration(name: fixture.bridge.name + "b", subnet: upperHalf))
        defer { Self.close(overlapping) }
        let error = #expect(throws: RuntimeError.self) {
            try overlapping.runtime.run(overlapping.spec("second", ["true"]) { $0.network = .bridge })
        }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("subnet \(upperHalf) of bridge \(fixture.bridge.name)b overlaps the host route \(fixture.bridge.subnet) on \(fixture.bridge.name)"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/\(fixture.bridge.name)b"), "no bridge made")
    }

    @Test func secondRuntimeOnTheSameBridgeIsRefused() throws {
        let fixture = try RuntimeFixture()
        defer { Self.close(fixture) }
        try fixture.runtime.create(fixture.spec("owner", ["true"]) { $0.network = .bridge })
        let second = try RuntimeFixture()
        defer { Self.close(second) }
        let error = #expect(throws: RuntimeError.self) {
            try second.runtime.create(second.spec("intruder", ["true"]) { $0.network = .bridge })
        }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("cannot use bridge \(fixture.bridge.name): another shoal runtime uses it (pid \(getpid()), state \(fixture.stateDirectory))"), "\(message)")
        #expect(second.runtime.container("intruder") == nil)
        fixture.close()  // the first runtime goes away: the bridge is free
        try second.runtime.create(second.spec("intruder", ["true"]) { $0.network = .bridge })
        // Nor may another runtime delete the bridge under its owner; the ownership file stays.
        let removal = #expect(throws: RuntimeError.self) { try fixture.runtime.removeBridge() }
        #expect("\(removal.map { "\($0)" } ?? "")".contains("another shoal runtime uses it (pid \(getpid()), state \(second.stateDirectory))"))
        #expect(FileManager.default.fileExists(atPath: "/run/shoal/bridges/\(fixture.bridge.name).lock"))
    }

    /// The runtime checks its bridge in full once, then by its interface
    /// index: a bridge deleted by hand meanwhile is made again (with its
    /// gateway address) by the next start, whose container reaches it.
    @Test func aBridgeDeletedByHandIsMadeAgainByTheNextStart() throws {
        let fixture = try RuntimeFixture()
        defer { Self.close(fixture) }
        let name = fixture.bridge.name
        let gateway = IPv4Subnet.format(fixture.bridge.gateway)
        #expect(try fixture.run("first", ["true"]) { $0.network = .bridge }.status == .exited(0))
        try fixture.runtime.delete("first")
        fixture.runtime.awaitCleanup()
        let before = if_nametoindex(name)
        #expect(try RouteNetlink().deleteLink(named: name))
        let second = try fixture.run("second", ["ping", "-c", "1", "-W", "5", gateway]) { $0.network = .bridge }
        #expect(second.status == .exited(0), "the gateway answers: \(second.output) \(second.error)")
        // A new bridge (the warm-namespace refill may have made it already).
        let after = if_nametoindex(name)
        #expect(after != 0 && after != before && FileManager.default.fileExists(atPath: "/sys/class/net/\(name)/bridge"))
    }

    /// A bridge whose runtime is gone (a stopped daemon's, a benchmark's, a
    /// test's worker) is deleted by name with its ownership file, which
    /// `ip link delete` used to leave in /run/shoal/bridges, one per bridge.
    @Test func aBridgeRemovedByNameTakesItsOwnershipFileWithIt() throws {
        let bridge = BridgeConfiguration(name: "shoalrb\(getpid() % 100_000)", subnet: IPv4Subnet("10.96.\(getpid() % 250).0/24")!)
        let lockFile = "/run/shoal/bridges/\(bridge.name).lock"
        let fixture = try RuntimeFixture(bridge: bridge)
        defer { Self.close(fixture) }
        let result = try fixture.run("owner", ["true"]) { $0.network = .bridge }
        #expect(result.status == .exited(0))
        #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge.name)") && FileManager.default.fileExists(atPath: lockFile))
        // Refused while a live runtime holds it: bridge and file stay.
        let refusal = #expect(throws: RuntimeError.self) { try ContainerRuntime.removeBridge(named: bridge.name) }
        #expect("\(refusal.map { "\($0)" } ?? "")".contains("another shoal runtime uses it (pid \(getpid()), state \(fixture.stateDirectory))"))
        #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge.name)") && FileManager.default.fileExists(atPath: lockFile))
        // Its runtime goes (as a daemon that stops): the bridge and the file stay, unlocked.
        try fixture.runtime.delete("owner")
        fixture.runtime.awaitCleanup()
        fixture.runtime.detach()
        #expect(FileManager.default.fileExists(atPath: lockFile))
        try ContainerRuntime.removeBridge(named: bridge.name)
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge.name)"), "bridge deleted")
        #expect(!FileManager.default.fileExists(atPath: lockFile), "its ownership file goes with it")
        // Absent is fine; a name that is no interface name is refused.
        #expect(throws: Never.self) { try ContainerRuntime.removeBridge(named: bridge.name) }
        #expect(throws: RuntimeError.self) { try ContainerRuntime.removeBridge(named: "../etc") }
    }

    @Test func hostNetworkSharesTheHostsInterfaces() throws {
        let fixture = try RuntimeFixture()
        defer { Self.close(fixture) }
        let result = try fixture.run("hostnet", ["sh", "-c", "hostname; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | sort"]) {
            $0.network = .host
        }
        let hostInterfaces = try FileManager.default.contentsOfDirectory(atPath: "/sys/class/net").sorted()
        var seen = result.output.split(separator: "\n").map(String.init)
        #expect(seen.first == ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) || seen.first == ProcessInfo.processInfo.hostName,
                "host network keeps the host's name")
        seen.removeFirst()
        #expect(Set(hostInterfaces).isSubset(of: Set(seen)) || Set(seen).isSubset(of: Set(hostInterfaces)), "\(seen) vs \(hostInterfaces)")
        #expect(seen.count > 1, "more than lo: \(seen)")
    }

    // MARK: - Helpers

    static func close(_ fixture: RuntimeFixture) {
        fixture.close()
        let name = fixture.bridge.name
        #expect(throws: Never.self) { try fixture.runtime.removeBridge() }
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/\(name)"), "test bridge removed")
        #expect(!FileManager.default.fileExists(atPath: "/run/shoal/bridges/\(name).lock"), "its ownership file goes with it")
    }

    /// curl's body from 127.0.0.1:port, retried until `within` passes; nil when it never answered.
    static func curl(_ port: UInt16, within: Duration) -> String? {
        let deadline = ContinuousClock.now + within
        repeat {
            if let body = run("/usr/bin/curl", ["-s", "-f", "-m", "5", "http://127.0.0.1:\(port)/"]) { return body }
            usleep(200_000)
        } while ContinuousClock.now < deadline
        return nil
    }

    /// stdout of a successful run, else nil.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) -> String? {
        guard FileManager.default.isExecutableFile(atPath: executable),
              let result = try? runToExit(executable, arguments), result.status == 0 else { return nil }
        return result.output
    }
}

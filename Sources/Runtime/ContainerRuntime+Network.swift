import Posix
#if canImport(Glibc)
import Glibc
#endif
import Foundation

extension ContainerRuntime {
    /// What ``start(_:)`` set up for a bridge container before its init
    /// exists: undone by ``tearDown(_:)`` when the start fails.
    struct StartedNetwork {
        var attachment: NodeBridge.Attachment
        var proxies: [any PublishedPortProxy]
    }

    /// /etc/hosts, /etc/hostname and /etc/resolv.conf are the runtime's,
    /// written into the container's directory and bind-mounted over the
    /// image's (before the spec's own mounts, which win).
    static let networkFileCount = 3

    /// The network files' bind mounts, written for this start. None for a
    /// container with a user namespace: its root cannot open files in the
    /// runtime's 0700 state directory (it keeps the image's files).
    func writeNetworkFiles(_ container: Container, _ state: ContainerState) throws -> [BindMount] {
        let spec = state.spec
        if spec.userNamespace != nil { return [] }
        let hosts: String
        switch spec.network {
        case .host:
            hosts = (try? Syscall.readFile("/etc/hosts")) ?? Self.hostsFile(own: nil, links: [])
        case .none:
            hosts = Self.hostsFile(own: nil, links: [])
        case .bridge:
            let own = state.network.map { ($0.address, Self.names(hostname: Self.hostname(spec), id: spec.id)) }
            hosts = Self.hostsFile(own: own, links: try linkEntries(spec))
        }
        let files = [
            ("hosts", "/etc/hosts", hosts),
            ("hostname", "/etc/hostname", Self.hostname(spec) + "\n"),
            ("resolv.conf", "/etc/resolv.conf", (try? Syscall.readFile("/etc/resolv.conf")) ?? ""),
        ]
        return try files.map { name, destination, text in
            let path = container.directory + "/" + name
            // Over what the last start (or a reused directory) left, not emptied first.
            try Self.hostCall { () throws(SystemError) in try Syscall.overwriteFile(path, Array(text.utf8), mode: 0o644) }
            return BindMount(source: path, destination: destination, readOnly: false, recursive: false)
        }
    }

    /// The container's host name: the spec's, else the host's with
    /// `--network host`, else the first 12 characters of its id (Docker's
    /// defaults).
    static func hostname(_ spec: ContainerSpec) -> String {
        if let hostname = spec.hostname { return hostname }
        if spec.network == .host {
            var name = [CChar](repeating: 0, count: 256)
            if gethostname(&name, name.count - 1) == 0 {
                return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        return String(spec.id.prefix(12))
    }

    static func names(hostname: String, id: String) -> [String] {
        hostname == id ? [id] : [hostname, id]
    }

    /// /etc/hosts: loopback names, the container's own address and names,
    /// then one line per link (alias first, as Docker writes them).
    static func hostsFile(own: (address: String, names: [String])?, links: [(address: String, names: [String])]) -> String {
        var lines = [
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            "fe00::0\tip6-localnet",
            "ff00::0\tip6-mcastprefix",
            "ff02::1\tip6-allnodes",
            "ff02::2\tip6-allrouters",
        ]
        for link in links { lines.append(link.address + "\t" + link.names.joined(separator: " ")) }
        if let own { lines.append(own.address + "\t" + own.names.joined(separator: " ")) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One hosts entry per `--link`: the linked container must be a bridge
    /// container of this runtime (its address is leased from create on).
    func linkEntries(_ spec: ContainerSpec) throws -> [(address: String, names: [String])] {
        try spec.links.map { link in
            guard let linked = container(link.container) else {
                throw RuntimeError.linkUnavailable(container: link.container, reason: "no such container: create it first")
            }
            let state = linked.state
            guard let attachment = state.network else {
                throw RuntimeError.linkUnavailable(
                    container: link.container, reason: "it runs with --network \(state.spec.network.rawValue), not on the bridge")
            }
            var names = Self.names(hostname: Self.hostname(state.spec), id: state.id)
            if let alias = link.alias, !names.contains(alias) { names.insert(alias, at: 0) }
            return (attachment.address, names)
        }
    }

    /// Creates the container's namespace on the bridge and binds its
    /// published ports (relaying starts once the container runs).
    func attachNetwork(_ state: ContainerState) throws -> StartedNetwork? {
        guard state.spec.network == .bridge else { return nil }
        guard let leased = state.network, let address = IPv4Subnet.parseAddress(leased.address) else {
            throw RuntimeError.invalidSpec("bridge container \(state.id) has no leased address: delete and create it again")
        }
        var proxies: [any PublishedPortProxy] = []
        do {
            for mapping in state.spec.publishedPorts {
                let published = PublishedPort(hostAddress: mapping.hostAddress, hostPort: mapping.hostPort, containerPort: mapping.containerPort,
                                              transport: mapping.transport)
                proxies.append(try Self.makePortProxy(published, containerAddress: leased.address))
            }
            let attachment = try bridge.attach(address: address)
            return StartedNetwork(attachment: attachment, proxies: proxies)
        } catch {
            proxies.forEach { $0.close() }
            throw error
        }
    }

    /// Undoes ``attachNetwork(_:)`` after a failed start.
    func tearDown(_ network: StartedNetwork) {
        network.proxies.forEach { $0.close() }
        if network.attachment.namespace >= 0 { Syscall.close(network.attachment.namespace) }
        bridge.detach(hostInterface: network.attachment.hostInterface)
    }

    /// Waits (on the cleanup thread) until a stopped container's veth is
    /// gone; false when the runtime stops first. The kernel deletes the pair
    /// with the container's network namespace once its last process is gone
    /// (in a batch, on its own worker, without the RTNL hold and RCU wait of
    /// one delete per container); only something else holding the namespace
    /// (an `nsenter`) keeps it, and after
    /// ``Configuration/vethRemovalTimeout`` it is deleted by hand.
    func awaitRemoval(hostInterface: String) -> Bool {
        bridge.awaitRemoval(hostInterface: hostInterface, timeout: configuration.vethRemovalTimeout) { [cleanup] in cleanup.isStopped }
    }

    /// After the container's init is gone: closes its published ports, and
    /// queues the wait for its veth to go, after which its state no longer
    /// names it. The address stays leased until delete.
    func detachNetwork(_ container: Container) {
        closePorts(container)
        guard let hostInterface = container.state.network?.hostInterface else { return }
        cleanup.enqueue { [weak self] in
            guard let self else { return }
            guard self.awaitRemoval(hostInterface: hostInterface) else { return }  // stopping: the next runtime sees it again
            guard self.container(container.id) === container else { return }  // deleted meanwhile: its removal goes on
            container.update { state in
                guard state.network?.hostInterface == hostInterface else { return }  // started again meanwhile
                state.network?.hostInterface = nil
                state.network?.ports = []
            }
        }
    }

    func closePorts(_ container: Container) {
        container.takeProxies().forEach { $0.close() }
    }

    /// A re-adopted running container's published ports, bound again on
    /// the host ports it had (best effort: a port taken meanwhile stays
    /// closed and is dropped from the state).
    func reopenPorts(_ container: Container) {
        guard let attachment = container.state.network else { return }
        try? bridge.claim()  // best effort: the container runs whether or not
        var open: [PublishedPort] = []
        for port in attachment.ports {
            guard let proxy = try? Self.makePortProxy(port, containerAddress: attachment.address) else { continue }
            proxy.start()
            container.adoptProxies([proxy])
            open.append(port)
        }
        if open != attachment.ports { container.update { $0.network?.ports = open } }
    }

    /// Takes an address for a new bridge container.
    func leaseAddress(_ spec: ContainerSpec) throws -> NetworkAttachment? {
        guard spec.network == .bridge else { return nil }
        try bridge.claim()
        let configuration = bridge.configuration
        let address = try leases.lease(for: spec.id)
        return NetworkAttachment(
            bridge: configuration.name, address: IPv4Subnet.format(address),
            prefixLength: configuration.subnet.prefixLength, gateway: IPv4Subnet.format(configuration.gateway))
    }

    /// Deletes the node bridge (tests, uninstall); refused while a container
    /// of this runtime is attached to it. Absent is fine. Containers created
    /// later make it again.
    public func removeBridge() throws {
        awaitCleanup()
        let attached = list().filter { $0.network?.hostInterface != nil }.map(\.id)
        guard attached.isEmpty else {
            throw RuntimeError.bridgeConflict(
                bridge: bridge.configuration.name,
                reason: "containers \(attached.joined(separator: ", ")) are attached to it: stop them before removing the bridge")
        }
        try bridge.remove()
    }

    /// Deletes the node bridge called `name` and its ownership file in
    /// /run/shoal/bridges, for whoever made it through a runtime that is
    /// gone (a stopped daemon's, a benchmark's, a test's): `ip link delete`
    /// leaves that file behind, one per bridge ever made. Refused while a
    /// live runtime holds the bridge; absent is fine.
    public static func removeBridge(named name: String) throws {
        let configuration = BridgeConfiguration(name: name)
        if let problem = configuration.problem { throw RuntimeError.bridgeConflict(bridge: name, reason: problem) }
        let bridge = NodeBridge(configuration: configuration, owner: "bridge removal", warmNamespaces: 0)
        defer { bridge.release() }
        try bridge.remove()
    }

    static func leaseDirectory(_ stateDirectory: String, bridge: String) -> String {
        stateDirectory + "/network/" + bridge + "/leases"
    }

    /// Gives a deleted container's address back.
    func releaseAddress(_ state: ContainerState) {
        guard let attachment = state.network, let address = IPv4Subnet.parseAddress(attachment.address) else { return }
        if attachment.bridge == leases.bridge.name {
            leases.release(address, for: state.id)
        } else {  // leased under an earlier bridge configuration
            AddressLeases(directory: Self.leaseDirectory(configuration.stateDirectory, bridge: attachment.bridge), bridge: leases.bridge)
                .release(address, for: state.id)
        }
    }
}

import Agent
import Foundation
import Images
import Net
import Registry
import Runtime

/// Every daemon in a cluster runs an agent (managers too: `shoal dev` is
/// manager and worker in one). It dials the managers this node knows of —
/// its own endpoint first when it is one — with the node's certificate.
///
/// ```
/// DIR/containers/  the container runtime's state (re-adopted after a restart)
/// DIR/images/      the content store (`shoal image import`, images the agent pulls)
/// DIR/registry/    the registry's own store (`shoal dev` only)
/// DIR/layers/      unpacked image layers, one directory per layer digest
/// DIR/agent/       the agent's task list, writable layers, named volumes
/// ```
extension Daemon {
    public var agent: Agent? { lockedAgent }

    var lockedAgent: Agent? { withLock { agentInstance } }

    func startAgent() {
        guard settings.runsAgent, nodeID != nil, lockedAgent == nil else { return }
        do {
            let data = settings.dataDirectory
            // One runtime per node: the engine's (`shoal container`) runs the tasks too.
            let engine = try containerEngine()
            let runtime = engine.runtime
            // The agent's own registry client and pulls (ended when it stops) over the engine's store and layers.
            let images = RegistryImageSource(local: engine.images.local)
            let connector = RPCDispatcherConnector(addresses: { [weak self] in self?.dispatcherAddresses() ?? [] },
                                                   context: { [weak self] in self?.clientContext() })
            let address = agentAddress()
            var configuration = AgentConfiguration(stateDirectory: data + "/agent", hostname: settings.hostname,
                                                   address: address, platform: ManagerNode.platform)
            // A node the cluster knows by a loopback address (`shoal dev`, nodes
            // sharing one machine) publishes there: on every interface it would
            // reach outside the machine, and nodes on one host would collide.
            if let publish = settings.defaultPublishAddress {
                configuration.publishAddress = publish
            } else if address.hasPrefix("127.") {
                configuration.publishAddress = address
            }
            let agent = try Agent(configuration: configuration, runtime: runtime, images: images, connector: connector)
            let installed = withLock { () -> Bool in
                guard agentInstance == nil else { return false }
                agentInstance = agent
                return true
            }
            if installed { agent.start() }
        } catch {
            FileHandle.standardError.write(Data("shoal daemon: the agent cannot start: \(error); this node will run no tasks\n".utf8))
        }
    }

    func stopAgent() async {
        let agent = withLock { () -> Agent? in
            defer { agentInstance = nil }
            return agentInstance
        }
        // The runtime stays attached: it is the engine's too (the daemon detaches it when it stops).
        await agent?.stop(detachRuntime: false)
    }

    private func dispatcherAddresses() -> [String] {
        switch current {
        case .none: return []
        case .manager(let manager):
            let others = manager.knownManagers.filter { $0.key != manager.raftID }.map(\.value).sorted()
            return [manager.advertiseAddress] + others
        case .worker(let worker): return worker.managerAddresses
        }
    }

    private func clientContext() -> TLSContext? {
        switch current {
        case .none: return nil
        case .manager(let manager): return manager.credentials.clientContext
        case .worker(let worker): return worker.credentials.clientContext
        }
    }

    private func agentAddress() -> String {
        switch current {
        case .manager(let manager): return (try? Support.host(of: Support.parseAddress(manager.advertiseAddress, defaultPort: 0, field: "advertise"))) ?? ""
        case .worker(let worker): return (try? Support.host(of: Support.parseAddress(worker.state.advertiseAddress, defaultPort: 0, field: "advertise"))) ?? ""
        case .none: return ""
        }
    }
}

extension Daemon {
    /// `shoal dev`: makes this daemon a one-node cluster (manager and
    /// worker, listening on loopback only) unless it already is one; its
    /// state stays under the data directory across restarts.
    public func ensureDevelopmentCluster() async throws {
        if nodeID == nil {
            _ = try await initCluster(InitRequest(listenAddress: "127.0.0.1:0", advertiseAddress: nil, apiListenAddress: "127.0.0.1:0"))
        }
        startAgent()
    }
}

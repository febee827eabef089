import Agent
import ClusterState
import Foundation
import HTTP
import Manager
import Net
import Raft
import RPC
import Runtime
import Storage

/// How a daemon runs: where its state lives, where its local API listens,
/// and the manager's timings.
public struct DaemonSettings: Sendable {
    public var dataDirectory: String
    /// The local control API's Unix socket (root-only, mode 0600).
    public var socketPath: String
    public var tickInterval: Duration = .milliseconds(100)
    public var electionTimeoutTicks = 10
    public var snapshotEveryEntries: UInt64 = 10_000
    /// A write that has not committed after this long answers 503.
    public var proposalTimeout: Duration = .seconds(5)
    /// A linearizable read that has not been confirmed after this long answers 503.
    public var readTimeout: Duration = .seconds(5)
    /// Joining: the whole exchange with the managers, catch-up included.
    public var joinTimeout: Duration = .seconds(30)
    public var hostname: String = ProcessInfo.processInfo.hostName
    /// How often agents heartbeat; a node is marked down after three missed periods.
    public var heartbeatPeriod: Duration = .seconds(5)
    /// Whether this daemon runs an agent (runs tasks). Needs root for containers.
    public var runsAgent = true
    /// The agent's containers live in cgroups under this parent.
    public var cgroupParent = "shoal"
    /// The node bridge of `--network bridge` containers (the default network
    /// of `shoal container run`); one runtime per bridge on a host.
    public var bridge = BridgeConfiguration()
    /// Where `-p HOST:CONTAINER`, `-p CONTAINER`, `-P` and service tasks'
    /// host-mode ports bind when they name no address (dockerd's `--ip`);
    /// nil: every interface (0.0.0.0), or a loopback node address for tasks.
    public var defaultPublishAddress: String?
    /// Spare container directories and writable layers made in the
    /// background at start, for a burst of containers to take (each new one
    /// is otherwise a dozen inodes made, and removed with it).
    public var warmContainerDirectories = 128
    /// Overlay roots of the image started last, mounted ahead of the next
    /// starts (an overlay mount is 1-3 ms on a busy journal-less ext4).
    public var warmRootMounts = 2
    /// Lifetime of the node certificates this daemon issues as a manager
    /// (its own at `init`, joining and renewing nodes'); each node renews
    /// its certificate at 50–80% of it.
    public var nodeCertificateLifetime: Duration = CertificateAuthority.defaultNodeCertificateLifetime
    /// `shoal dev`: serve a registry here (its store under DIR/registry),
    /// started before anything else so a taken port fails the start; nil: none.
    public var registryListenAddress: SocketAddress?

    public static let defaultDataDirectory = "/var/lib/shoal"
    public static let defaultSocketPath = "/run/shoal/shoal.sock"
    public static let defaultListenAddress = "0.0.0.0:4242"
    public static let defaultAPIListenAddress = "0.0.0.0:4243"

    public init(dataDirectory: String = defaultDataDirectory, socketPath: String = defaultSocketPath) {
        self.dataDirectory = dataDirectory
        self.socketPath = socketPath
    }
}

/// The node daemon (`shoal daemon`): serves the local control API on its
/// Unix socket and runs this node's part in a cluster — nothing, a worker
/// or a manager — resuming after a restart as what it was.
public final class Daemon: @unchecked Sendable {
    public let settings: DaemonSettings
    let directory: DataDirectory
    private var localServer: HTTPServer?
    private var registry: DevelopmentRegistry?

    enum Member {
        case none
        case manager(ManagerNode)
        case worker(WorkerNode)
    }

    private let lock = NSLock()
    // Guarded by `lock`.
    private var member: Member = .none
    private var transitioning = false
    private var stopped = false
    /// Runs this node's tasks once it belongs to a cluster (see Daemon+Agent.swift).
    var agentInstance: Agent?
    /// `shoal container ...`; its runtime is shared with the agent (see Daemon+Containers.swift).
    var engineInstance: ContainerEngine?
    /// Pins service images to digests when a manager is asked to (`service create/update`).
    let imageResolver = ServiceImageResolver()

    public init(settings: DaemonSettings) {
        self.settings = settings
        directory = DataDirectory(path: settings.dataDirectory)
    }

    var current: Member { lock.withLock { member } }

    func withLock<T>(_ body: () throws -> T) rethrows -> T { try lock.withLock(body) }

    var manager: ManagerNode? {
        if case .manager(let manager) = current { return manager }
        return nil
    }

    /// The remote control API's address when this daemon is a manager.
    public var apiAddress: SocketAddress? { manager?.apiAddress }
    /// The manager RPC endpoint's advertised address when this daemon is a manager.
    public var advertiseAddress: String? { manager?.advertiseAddress }
    /// This node's id once it belongs to a cluster.
    public var nodeID: String? {
        switch current {
        case .none: return nil
        case .manager(let manager): return manager.nodeID.rawValue
        case .worker(let worker): return worker.state.nodeID
        }
    }
    /// Where the registry of ``DaemonSettings/registryListenAddress`` listens, once started.
    public var registryAddress: SocketAddress? { lock.withLock { registry?.address } }
    /// The Raft status when this daemon is a manager.
    public var raftStatus: ManagerRaft.Status? { manager?.raft.status }

    // MARK: Lifecycle

    /// Resumes the role node.json records, then serves the local API.
    public func start() async throws {
        try directory.prepare()
        if let address = settings.registryListenAddress {
            let started = try DevelopmentRegistry(dataDirectory: settings.dataDirectory, address: address)
            lock.withLock { registry = started }
        }
        if let state = try directory.loadState() {
            switch state.role {
            case .manager:
                let manager = try makeManager(state: state, mode: .restart, seeds: [:])
                install(.manager(manager))
                if !state.joinComplete {
                    // Crashed while joining: repeat the last steps in the background.
                    let contacts = state.managerAddresses
                    Task { [weak self] in
                        guard let self else { return }
                        do {
                            try await manager.joinRaft(contacts: contacts)
                            self.finishJoin(manager)
                        } catch {
                            FileHandle.standardError.write(Data("shoal daemon: finishing the join failed: \(error)\n".utf8))
                        }
                    }
                }
            case .worker:
                let worker = try makeWorker(state: state)
                install(.worker(worker))
                try? await worker.register(hostname: settings.hostname, timeout: .seconds(2))
            }
        }
        try startLocalAPI()
        startEngine()
        startAgent()
    }

    private func startLocalAPI() throws {
        let socketDirectory = (settings.socketPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        let server = HTTPServer(router: ControlAPI.router(daemon: self, local: true, manager: nil), configuration: ControlAPI.serverConfiguration)
        // Bind with a umask that already denies group/other, then make sure.
        let previous = umask(0o177)
        defer { umask(previous) }
        try server.listen(on: .unix(path: settings.socketPath))
        chmod(settings.socketPath, 0o600)
        localServer = server
    }

    /// Stops serving and stops this node's cluster member (cleanly: the Raft
    /// log is already durable, so nothing is lost).
    public func stop() async {
        let member: Member = lock.withLock {
            stopped = true
            defer { self.member = .none }
            return self.member
        }
        if let localServer { await localServer.shutdown(gracePeriod: .milliseconds(500)) }
        // Its router holds this daemon: keeping it would keep every store open after stop.
        localServer = nil
        unlink(settings.socketPath)
        await stopAgent()
        await stopMember(member)
        let registry = lock.withLock { () -> DevelopmentRegistry? in
            defer { self.registry = nil }
            return self.registry
        }
        await registry?.stop()
        if let engine = withLock({ engineInstance }) {
            engine.stop()
            await engine.images.shutdown()
        }
        await imageResolver.shutdown()
    }

    private func stopMember(_ member: Member) async {
        switch member {
        case .none: break
        case .manager(let manager): await manager.stop()
        case .worker(let worker): await worker.stop()
        }
    }

    private func install(_ next: Member) {
        lock.withLock { member = next }
    }

    private func makeManager(state: NodeState, mode: ManagerNode.StartMode, seeds: [NodeID: String]) throws -> ManagerNode {
        let manager = try ManagerNode(directory: directory, state: state, settings: settings, mode: mode, seedAddresses: seeds) { [unowned self] manager in
            ControlAPI.router(daemon: self, local: false, manager: manager)
        }
        manager.onRoleChange = { [weak self] role in
            guard let self else { return }
            Task { await self.follow(role) }
        }
        try directory.save(manager.state)
        return manager
    }

    private func makeWorker(state: NodeState) throws -> WorkerNode {
        let worker = try WorkerNode(directory: directory, state: state)
        worker.onRoleChange = { [weak self] role in
            guard let self else { return }
            Task { await self.follow(role) }
        }
        worker.start()
        return worker
    }

    private func beginTransition() throws(APIError) {
        let ok = lock.withLock {
            guard !transitioning, !stopped else { return false }
            transitioning = true
            return true
        }
        guard ok else {
            throw APIError(status: 409, code: "busy", message: "the daemon is already changing its cluster membership", hint: "wait for it to finish")
        }
    }

    private func endTransition() {
        lock.withLock { transitioning = false }
    }

    private func finishJoin(_ manager: ManagerNode) {
        manager.markJoinComplete()
        try? directory.save(manager.state)
    }

    // MARK: init

    func initCluster(_ request: InitRequest) async throws -> InitReply {
        if request.forceNewCluster == true { return try await forceNewCluster() }
        try beginTransition()
        defer { endTransition() }
        guard case .none = current else {
            throw APIError(status: 409, code: "already_in_cluster", message: "this node is already part of a cluster",
                           hint: "use `shoal leave` first, or `shoal init --force-new-cluster` to recover a manager that lost its quorum")
        }
        let listen = request.listenAddress ?? DaemonSettings.defaultListenAddress
        let listenAddress = try Support.parseAddress(listen, defaultPort: 4242, field: "listenAddress")
        let advertise = try advertiseAddress(request.advertiseAddress, listen: listenAddress)
        let apiListen = request.apiListenAddress ?? DaemonSettings.defaultAPIListenAddress
        _ = try Support.parseAddress(apiListen, defaultPort: 4243, field: "apiListenAddress")

        let nodeID = CertificateIssuer.randomNodeID()
        let clusterID = CertificateIssuer.randomNodeID()
        let authority = try CertificateAuthority.createRoot(clusterID: clusterID)
        let (certificate, key) = try authority.issueNodeCredentials(nodeID: nodeID, role: .manager, lifetime: settings.nodeCertificateLifetime)
        try directory.prepare()
        try directory.saveCredentials(NodeCredentials(certificate: certificate, key: key, root: authority.certificate))
        try directory.saveManagerKeys(rootKeyPEM: try authority.key.pemEncoded(), secretsKey: SecretBox.generateKey())
        let raftID = Support.raftID(forNodeID: nodeID)
        let state = NodeState(nodeID: nodeID, clusterID: clusterID, role: .manager, raftID: raftID, listenAddress: Support.text(listenAddress),
                              advertiseAddress: advertise, apiListenAddress: apiListen, managerAddresses: [], joinComplete: true)
        let manager: ManagerNode
        do {
            manager = try makeManager(state: state, mode: .bootstrap, seeds: [:])
        } catch {
            directory.wipe()
            throw error
        }
        install(.manager(manager))
        do {
            try await waitForLeadership(manager)
            // Not ready until its agent opens a dispatcher session: a manager that runs no agent takes no tasks.
            let status = Node.Status(state: .unknown, message: Dispatcher.awaitingAgentMessage, hostname: settings.hostname,
                                     address: Support.host(of: try Support.parseAddress(manager.advertiseAddress, defaultPort: 0, field: "advertise")),
                                     platform: ManagerNode.platform)
            try await manager.propose(.createNode(id: manager.nodeID, spec: Node.Spec(role: .manager), status: status,
                                                  managerStatus: Node.ManagerStatus(raftID: raftID, address: manager.advertiseAddress)))
            let tokens = JoinTokens(worker: manager.tokens.token(for: .worker).description, manager: manager.tokens.token(for: .manager).description)
            var generator = SecureRandom()
            try await manager.propose(.createConfig(id: ObjectID.random(using: &generator), spec: Config.Spec(name: JoinTokens.configName, data: Support.encode(tokens))))
            startAgent()
            return InitReply(nodeID: nodeID, clusterID: clusterID, advertiseAddress: manager.advertiseAddress,
                             apiAddress: manager.apiAddress.map(Support.text) ?? "", workerToken: tokens.worker, managerToken: tokens.manager)
        } catch {
            install(.none)
            await manager.stop()
            directory.wipe()
            throw error
        }
    }

    private func advertiseAddress(_ requested: String?, listen: SocketAddress) throws(APIError) -> String {
        if let requested {
            let parsed = try Support.parseAddress(requested, defaultPort: listen.port ?? 4242, field: "advertiseAddress")
            guard !Support.isUnspecified(parsed) else { throw .invalid("advertiseAddress", "'\(requested)' is not an address other nodes can dial") }
            return Support.text(parsed)
        }
        if !Support.isUnspecified(listen) { return Support.text(listen) }
        let host = Support.firstExternalIPv4() ?? "127.0.0.1"
        return "\(host):\(listen.port ?? 4242)"
    }

    private func waitForLeadership(_ manager: ManagerNode, timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while manager.raft.status.role != .leader {
            guard ContinuousClock.now < deadline else {
                throw APIError(status: 503, code: "no_leader", message: "this manager did not become leader within \(timeout)", hint: "check the daemon's log")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: join

    func join(_ request: JoinRequest) async throws -> JoinReply {
        try beginTransition()
        defer { endTransition() }
        guard case .none = current else {
            throw APIError(status: 409, code: "already_in_cluster", message: "this node is already part of a cluster", hint: "use `shoal leave` first")
        }
        let token: JoinToken
        do {
            token = try JoinToken(parsing: request.token)
        } catch {
            throw APIError.invalid("token", "\(error)")
        }
        let contact = try Support.parseAddress(request.address, defaultPort: 4242, field: "address")
        let contactText = Support.text(contact)
        let listen = request.listenAddress ?? DaemonSettings.defaultListenAddress
        let listenAddress = try Support.parseAddress(listen, defaultPort: 4242, field: "listenAddress")
        let advertise = try advertiseAddress(request.advertiseAddress, listen: listenAddress)
        let apiListen = request.apiListenAddress ?? DaemonSettings.defaultAPIListenAddress
        _ = try Support.parseAddress(apiListen, defaultPort: 4243, field: "apiListenAddress")

        // The token does not say its role: a worker's secret is tried first.
        var joined: NodeCredentials?
        var refusal: (any Error)?
        for role in [NodeRole.worker, .manager] {
            do {
                joined = try await NodeJoiner.join(address: contact, token: token, role: role, deadline: .now + .seconds(10))
                break
            } catch let error as RPCError where error.code == .permissionDenied {
                refusal = error
            } catch let error as TLSError {
                throw APIError(status: 400, code: "invalid_token", message: "the manager at \(contactText) is not the cluster this token belongs to: \(error)",
                               hint: "check the address and the token (`shoal join-token` on a manager)")
            } catch {
                throw APIError(status: 503, code: "unavailable", message: "cannot reach the manager at \(contactText): \(error)", hint: "check the address and that the manager is running")
            }
        }
        guard let credentials = joined, let identity = credentials.identity else {
            throw APIError(status: 403, code: "invalid_token",
                           message: "the join token was refused: it is wrong, or it was rotated (\(refusal.map { "\($0)" } ?? ""))",
                           hint: "get the current token with `shoal join-token worker|manager` on a manager")
        }
        try directory.prepare()
        try directory.saveCredentials(credentials)
        var state = NodeState(nodeID: identity.nodeID, clusterID: identity.clusterID, role: identity.role == .manager ? .manager : .worker,
                              raftID: Support.raftID(forNodeID: identity.nodeID), listenAddress: Support.text(listenAddress),
                              advertiseAddress: advertise, apiListenAddress: apiListen, managerAddresses: [contactText], joinComplete: false)
        do {
            if identity.role == .worker {
                state.joinComplete = true
                try directory.save(state)
                let worker = try makeWorker(state: state)
                try await worker.register(hostname: settings.hostname, timeout: settings.joinTimeout)
                install(.worker(worker))
                startAgent()
                return JoinReply(nodeID: identity.nodeID, role: "worker")
            }
            let store = try CredentialStore(credentials)
            let manager = try await becomeManager(state: state, contacts: [contactText], caller: PeerCaller(context: { store.clientContext }))
            startAgent()
            return JoinReply(nodeID: manager.nodeID.rawValue, role: "manager")
        } catch {
            install(.none)
            directory.wipe()
            throw error
        }
    }

    /// Fetches the manager keys, registers the node, starts a Raft member with
    /// an empty log and has the leader add and promote it.
    private func becomeManager(state: NodeState, contacts: [String], caller: PeerCaller) async throws -> ManagerNode {
        var state = state
        state.role = .manager
        state.joinComplete = false
        state.managerAddresses = contacts
        let keys: ManagerKeysReply = try await caller.callAny(contacts, ManagerMethods.keys, ManagerNode.Empty(), timeout: settings.joinTimeout)
        try directory.saveManagerKeys(rootKeyPEM: keys.rootKeyPEM, secretsKey: keys.secretsKey)
        let advertiseHost = Support.host(of: try Support.parseAddress(state.advertiseAddress, defaultPort: 0, field: "advertise address"))
        let _: ManagerNode.Empty = try await caller.callAny(contacts, ManagerMethods.register,
                                                           NodeRegistration(hostname: settings.hostname, address: advertiseHost), timeout: settings.joinTimeout)
        await caller.closeAll()
        directory.removeManagerFiles(keepingKeys: true)
        let manager = try makeManager(state: state, mode: .join, seeds: keys.managers)
        install(.manager(manager))
        let everyone = contacts + keys.managers.values.sorted()
        do {
            try await manager.joinRaft(contacts: everyone)
        } catch {
            // Best effort: take our half-added member and node back out.
            let _: LeaderReply? = try? await manager.peers.callAny(everyone, ManagerMethods.leader, LeaderRequest.removeNode(nodeID: manager.nodeID, force: true),
                                                                   timeout: .seconds(5))
            install(.none)
            await manager.stop()
            throw error
        }
        finishJoin(manager)
        return manager
    }

    // MARK: role changes (promote / demote)

    /// Converges on `role`, the role this node's spec now asks for.
    private func follow(_ role: Node.Role) async {
        do {
            try beginTransition()
        } catch {
            return
        }
        defer { endTransition() }
        do {
            switch (current, role) {
            case (.worker(let worker), .manager):
                let credentials = try await requestCertificate(from: worker.managerAddresses, caller: worker.peers, role: .manager)
                var state = worker.state
                await worker.stop()
                install(.none)
                try directory.saveCredentials(credentials)
                state.role = .manager
                try directory.save(state)
                let store = try CredentialStore(credentials)
                _ = try await becomeManager(state: state, contacts: state.managerAddresses, caller: PeerCaller(context: { store.clientContext }))
            case (.manager(let manager), .worker):
                let others = manager.knownManagers.filter { $0.key != manager.raftID }.map(\.value).sorted()
                let credentials = try await requestCertificate(from: others, caller: manager.peers, role: .worker)
                var state = manager.state
                install(.none)
                await manager.stop()
                directory.removeManagerFiles(keepingKeys: false)
                try directory.saveCredentials(credentials)
                state.role = .worker
                state.managerAddresses = others
                state.joinComplete = true
                try directory.save(state)
                let worker = try makeWorker(state: state)
                install(.worker(worker))
            default:
                break
            }
        } catch {
            FileHandle.standardError.write(Data("shoal daemon: changing role to \(role.rawValue) failed: \(error); retrying\n".utf8))
            if case .none = current, let state = try? directory.loadState() {
                // Put back what node.json says so the next round can retry.
                if state.role == .worker, let worker = try? makeWorker(state: state) { install(.worker(worker)) }
            }
        }
    }

    private func requestCertificate(from addresses: [String], caller: PeerCaller, role: NodeRole) async throws -> NodeCredentials {
        let key = try PrivateKey.generateP256()
        let csr = try CertificateSigningRequest.create(nodeID: "renewing-node", key: key)
        let reply: CertificateReplyMessage = try await caller.callAny(addresses, ManagerMethods.certificate, CertificateRequestMessage(csrPEM: csr.pemEncoded), timeout: .seconds(5))
        let credentials = NodeCredentials(certificate: try Certificate(pemEncoded: reply.certificatePEM), key: key, root: try Certificate(pemEncoded: reply.rootPEM))
        guard credentials.identity?.role == role, credentials.certificate.matches(key) else {
            throw APIError(status: 500, code: "internal", message: "the manager issued a certificate for another role than \(role.rawValue)")
        }
        return credentials
    }

    // MARK: leave

    func leave(force: Bool) async throws {
        try beginTransition()
        defer { endTransition() }

        switch current {
        case .none:
            throw APIError(status: 409, code: "not_in_cluster", message: "this node is not part of a cluster", hint: "")
        case .worker(let worker):
            let _: ManagerNode.Empty? = try? await worker.peers.callAny(worker.managerAddresses, ManagerMethods.leave, ManagerNode.Empty(), timeout: .seconds(2))
            install(.none)
            await worker.stop()
        case .manager(let manager):
            guard force else {
                throw APIError(status: 409, code: "failed_precondition", message: "this node is a manager: leaving would reduce the managers' fault tolerance, and the last manager leaving ends the cluster",
                               hint: "demote it first with `shoal node demote \(manager.nodeID)`, or use `shoal leave --force`")
            }
            if manager.raft.status.configuration.voters.count > 1 {
                _ = try? await withTimeout(.seconds(5)) { try await manager.onLeader(.demote(nodeID: manager.nodeID)) }
            }
            install(.none)
            await manager.stop()
        }
        // Leaving ends this node's tasks: the cluster reschedules them elsewhere.
        lockedAgent?.removeAllContainers()
        await stopAgent()
        directory.wipe()
    }

    // MARK: --force-new-cluster

    /// Restarts this manager's Raft from its own log as the only voter
    /// (Swarm's `--force-new-cluster`), then removes the other managers from
    /// the state so that they can be removed or rejoin.
    func forceNewCluster() async throws -> InitReply {
        try beginTransition()
        defer { endTransition() }
        guard let old = manager, var state = try directory.loadState(), state.role == .manager else {
            throw APIError(status: 409, code: "failed_precondition", message: "--force-new-cluster needs a daemon that is (or was) a manager", hint: "run it on a surviving manager")
        }
        install(.none)
        await old.stop()
        try ForceNewCluster.rewrite(databasePath: directory.raftDatabase, as: state.raftID)
        state.joinComplete = true
        let manager = try makeManager(state: state, mode: .restart, seeds: [:])
        install(.manager(manager))
        try await waitForLeadership(manager)
        let others = try await manager.read { state in state.nodes.filter { $0.managerStatus != nil && $0.managerStatus?.raftID != manager.raftID } }
        for node in others {
            try await manager.propose(.setManagerStatus(id: node.id, managerStatus: nil))
            if let updated = try await manager.read({ $0.node(node.id) }) {
                var spec = updated.spec
                spec.role = .worker
                try await manager.propose(.updateNodeSpec(id: node.id, expectedVersion: updated.meta.version, spec: spec))
            }
        }
        let tokens = try await manager.read { ManagerNode.joinTokens(in: $0) }
        return InitReply(nodeID: manager.nodeID.rawValue, clusterID: state.clusterID, advertiseAddress: manager.advertiseAddress,
                         apiAddress: manager.apiAddress.map(Support.text) ?? "", workerToken: tokens?.worker ?? "", managerToken: tokens?.manager ?? "")
    }

    // MARK: status

    func status() -> DaemonStatus {
        var status = DaemonStatus(role: "none", nodeID: nil, clusterID: nil, advertiseAddress: nil, apiAddress: nil, managerAddresses: [], raft: nil)
        switch current {
        case .none: break
        case .worker(let worker):
            status.role = "worker"
            status.nodeID = worker.state.nodeID
            status.clusterID = worker.state.clusterID
            status.managerAddresses = worker.managerAddresses
        case .manager(let manager):
            status.role = "manager"
            status.nodeID = manager.nodeID.rawValue
            status.clusterID = manager.state.clusterID
            status.advertiseAddress = manager.advertiseAddress
            status.apiAddress = manager.apiAddress.map(Support.text)
            status.managerAddresses = manager.knownManagers.values.sorted()
            status.raft = RaftStatusView(manager.raft.status)
        }
        return status
    }
}

import ClusterState
import Foundation
import HTTP
import Manager
import Net
import Raft
import RPC
import Storage

/// A daemon acting as a manager: its ``ManagerRaft`` on SQLite, the manager
/// RPC endpoint (Raft step, join, certificate renewal, forwarding to the
/// leader), the remote control API over mutual TLS, and the loops that keep
/// the peer address book, the join tokens and the reachability table current.
final class ManagerNode: @unchecked Sendable {
    enum StartMode: Sendable {
        /// `shoal init`: a new group with this member as the only voter.
        case bootstrap
        /// Joining an existing group: start with an empty log and wait for the leader.
        case join
        /// Resume from raft.sqlite.
        case restart
    }

    let directory: DataDirectory
    private(set) var state: NodeState
    let settings: DaemonSettings
    let nodeID: ObjectID
    let raftID: NodeID
    let authority: CertificateAuthority
    let credentials: CredentialStore
    let tokens: JoinTokenStore
    let issuer: CertificateIssuer
    let secretBox: SecretBox
    let raft: ManagerRaft
    let transport: RPCPeerTransport
    let peers: PeerCaller
    private(set) var renewal: NodeCertificateRenewal!
    let rpcServer: RPCServer
    private let rpcListener: TCPListener
    private var rpcTask: Task<Void, Never>?
    private(set) var apiServer: HTTPServer?
    private(set) var apiAddress: SocketAddress?
    private var loops: [Task<Void, Never>] = []
    /// Agent sessions (every manager) and the leader's orchestration loops.
    private(set) var dispatcher: Dispatcher!
    private(set) var leaderLoop: LeaderLoop!
    /// Told when this node's desired role (its node spec) no longer matches.
    var onRoleChange: (@Sendable (Node.Role) -> Void)?

    private let lock = NSLock()
    // Guarded by `lock`.
    private var addressBook: [NodeID: String] = [:]
    private var lastAnswer: [NodeID: ContinuousClock.Instant] = [:]
    private var learnedFromState: Set<NodeID> = []

    /// A peer that answered a ping within this long counts as reachable.
    static let reachableWindow: Duration = .seconds(3)
    static let pingPeriod: Duration = .seconds(1)
    static let reconcilePeriod: Duration = .seconds(1)
    static let forwardRetryDelay: Duration = .milliseconds(50)

    var advertiseAddress: String { state.advertiseAddress }

    init(directory: DataDirectory, state: NodeState, settings: DaemonSettings, mode: StartMode, seedAddresses: [NodeID: String], apiRouter: (ManagerNode) -> HTTPRouter) throws {
        self.directory = directory
        self.settings = settings
        guard let nodeID = ObjectID(state.nodeID) else { throw APIError(status: 500, code: "internal", message: "node.json holds an invalid node id '\(state.nodeID)'") }
        self.nodeID = nodeID
        raftID = state.raftID
        let nodeCredentials = try directory.loadCredentials()
        credentials = try CredentialStore(nodeCredentials)
        authority = try CertificateAuthority(certificate: nodeCredentials.root, key: try PrivateKey.read(fromFile: directory.rootKey))
        guard let secretsKey = Support.readFile(directory.secretsKey), secretsKey.count == SecretBox.keyBytes else {
            throw APIError(status: 500, code: "internal", message: "\(directory.secretsKey) is missing or not \(SecretBox.keyBytes) bytes", hint: "restore it from another manager")
        }
        secretBox = SecretBox(key: secretsKey)
        tokens = JoinTokenStore(root: nodeCredentials.root)
        issuer = CertificateIssuer(authority: authority, tokens: tokens, certificateLifetime: settings.nodeCertificateLifetime)

        let listen = try Support.parseAddress(state.listenAddress, defaultPort: 4242, field: "listen address")
        rpcListener = try TCPListener.bind(listen)
        var state = state
        let boundPort = rpcListener.localAddress.port ?? 0
        state.listenAddress = Support.text(rpcListener.localAddress)
        var advertise = try Support.parseAddress(state.advertiseAddress, defaultPort: boundPort, field: "advertise address")
        if advertise.port == 0 { advertise = Support.isNumericIPv6(Support.host(of: advertise)) ? .ipv6(Support.host(of: advertise), port: boundPort) : .ipv4(Support.host(of: advertise), port: boundPort) }
        state.advertiseAddress = Support.text(advertise)
        self.state = state

        let store = credentials
        transport = RPCPeerTransport(addresses: [:], context: { store.clientContext })
        peers = PeerCaller(context: { store.clientContext })
        var configuration = ManagerRaft.Configuration(raft: RaftOptions(id: raftID, seed: raftID))
        configuration.tickInterval = settings.tickInterval
        configuration.raft.electionTimeoutTicks = settings.electionTimeoutTicks
        configuration.snapshotEveryEntries = settings.snapshotEveryEntries
        let storage = try SQLiteRaftStorage(path: directory.raftDatabase)
        if mode != .restart, try storage.load() != .empty {
            throw APIError(status: 409, code: "failed_precondition", message: "\(directory.raftDatabase) already holds a Raft log",
                           hint: "this data directory belonged to a manager; remove it or use another --data")
        }
        raft = try ManagerRaft(configuration: configuration, storage: storage, transport: transport, bootstrapVoters: mode == .bootstrap ? [raftID] : nil)
        rpcServer = RPCServer()
        setAddress(raftID, state.advertiseAddress)
        for (id, address) in seedAddresses { setAddress(id, address) }

        dispatcher = Dispatcher(manager: self, heartbeatPeriod: settings.heartbeatPeriod)
        leaderLoop = LeaderLoop(manager: self, dispatcher: dispatcher)
        registerMethods()
        // Contexts come from the store at each accept: a renewed certificate
        // serves new connections at once. The RPC endpoint also serves joins,
        // whose callers have no certificate yet.
        let server = rpcServer
        let listener = rpcListener
        rpcTask = Task { await server.serve(listener: listener, context: { store.joinServerContext }) }
        raft.start()

        if !state.apiListenAddress.isEmpty {
            let apiListen = try Support.parseAddress(state.apiListenAddress, defaultPort: 4243, field: "API listen address")
            let api = HTTPServer(router: apiRouter(self), configuration: ControlAPI.serverConfiguration)
            let bound = try api.listen(on: apiListen, tlsContext: { store.serverContext })
            apiServer = api
            apiAddress = bound
            self.state.apiListenAddress = Support.text(bound)
        }
        startLoops()
        // Renew with the other managers first, this one (over its own
        // endpoint, like any node) last.
        renewal = NodeCertificateRenewal(store: store, directory: directory, managers: { [weak self] in
            guard let self else { return [] }
            return self.knownManagers.filter { $0.key != self.raftID }.map(\.value).sorted() + [self.advertiseAddress]
        })
        renewal.start()
    }

    func stop() async {
        for loop in loops { loop.cancel() }
        await renewal?.stop()
        leaderLoop.stop()
        dispatcher.stop()
        if let apiServer { await apiServer.shutdown(gracePeriod: .milliseconds(500)) }
        // Its router holds this manager (and its Raft log's database): drop it.
        apiServer = nil
        rpcListener.close()
        rpcTask?.cancel()
        await rpcTask?.value
        raft.stop()
        transport.stop()
        await peers.closeAll()
    }

    // MARK: Address book and reachability

    func setAddress(_ id: NodeID, _ address: String?) {
        lock.withLock { addressBook[id] = address }
        let parsed = address.flatMap { try? Support.parseAddress($0, defaultPort: 4242, field: "manager address") }
        if id != raftID { transport.updateAddress(of: id, to: parsed) }
    }

    func address(of id: NodeID) -> String? { lock.withLock { addressBook[id] } }

    var knownManagers: [NodeID: String] { lock.withLock { addressBook } }

    /// Whether `id` answered recently (this member always is).
    func isReachable(_ id: NodeID) -> Bool {
        if id == raftID { return true }
        guard let last = lock.withLock({ lastAnswer[id] }) else { return false }
        return ContinuousClock.now - last < Self.reachableWindow
    }

    /// Makes the address book and the join tokens match `clusterState`.
    func sync(with clusterState: ClusterState) {
        var book: [NodeID: String] = [raftID: state.advertiseAddress]
        for node in clusterState.nodes {
            if let status = node.managerStatus { book[status.raftID] = status.address }
        }
        let current = knownManagers
        for (id, address) in book where current[id] != address { setAddress(id, address) }
        // Forget only members the state told us about and no longer lists:
        // seeds from the join stay until the log catches up with them.
        let forgotten: [NodeID] = lock.withLock {
            let gone = learnedFromState.subtracting(book.keys)
            learnedFromState = Set(book.keys)
            return Array(gone)
        }
        for id in forgotten where id != raftID { setAddress(id, nil) }
        if let tokens = Self.joinTokens(in: clusterState) {
            for (role, text) in [(NodeRole.worker, tokens.worker), (.manager, tokens.manager)] {
                if let token = try? JoinToken(parsing: text), token.pins(authority.certificate), self.tokens.token(for: role) != token {
                    self.tokens.replace(role, with: token)
                }
            }
        }
    }

    static func joinTokens(in state: ClusterState) -> (JoinTokens)? {
        guard let config = state.configs.first(where: { $0.spec.name == JoinTokens.configName }) else { return nil }
        return try? Support.decode(JoinTokens.self, from: config.spec.data)
    }

    private func startLoops() {
        dispatcher.start()
        leaderLoop.start()
        // The watch: peers' addresses and rotated tokens as they commit.
        // Only managers are in the address book: a worker's status (a
        // thousand of them register and heartbeat back to ready) would
        // otherwise cost a copy of the state and a walk over every node
        // each, O(nodes²) as a fleet joins.
        let events = raft.watch(filter: { event in
            switch event.object {
            case .node(let node): return node.managerStatus != nil || node.spec.role == .manager || event.action == .removed
            case .config(let config): return config.spec.name == JoinTokens.configName
            default: return false
            }
        })
        loops.append(Task { [weak self] in
            if let self, let state = try? await self.raft.read(linearizable: false, { $0 }) { self.sync(with: state) }
            for await _ in events {
                guard let self else { return }
                if let state = try? await self.raft.read(linearizable: false, { $0 }) { self.sync(with: state) }
            }
        })
        // Pings: the reachability column of `node ls`.
        loops.append(Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                let targets = self.knownManagers.filter { $0.key != self.raftID }
                await withTaskGroup(of: Void.self) { group in
                    for (id, address) in targets {
                        group.addTask {
                            if (try? await self.peers.call(address, ManagerMethods.ping, Empty(), timeout: .seconds(1), as: Empty.self)) != nil {
                                self.lock.withLock { self.lastAnswer[id] = .now }
                            }
                        }
                    }
                }
                try? await Task.sleep(for: Self.pingPeriod)
            }
        })
        // Role reconciliation: a demoted manager becomes a worker.
        loops.append(Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.reconcilePeriod)
                guard let self, self.state.joinComplete else { continue }
                await self.reconcileRole()
            }
        })
    }

    private func reconcileRole() async {
        let own = try? await raft.read(linearizable: false) { [nodeID] in $0.node(nodeID) }
        if let node = own ?? nil, node.spec.role == .worker, node.managerStatus == nil {
            onRoleChange?(.worker)
            return
        }
        // A member removed from the group may never see its removal in its
        // own log: ask another manager what our node's spec says.
        let others = knownManagers.filter { $0.key != raftID }.map(\.value).sorted()
        if let reply = try? await peers.callAny(others, ManagerMethods.nodeSelf, Empty(), timeout: .seconds(2), as: NodeSelfReply.self),
           let node = reply.node, node.spec.role == .worker {
            onRoleChange?(.worker)
        }
    }

    // MARK: Reads and writes

    /// Reads the state: linearizable (ReadIndex, retried across leader
    /// changes until `readTimeout`) or, with `stale`, this member's copy.
    func read<T: Sendable>(stale: Bool = false, _ body: @escaping @Sendable (ClusterState) -> T) async throws -> T {
        if stale { return try await raft.read(linearizable: false, body) }
        let deadline = ContinuousClock.now + settings.readTimeout
        let timeout = settings.readTimeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw APIError.noQuorum("a linearizable read", after: timeout) }
            do {
                return try await withTimeout(remaining, onTimeout: { APIError.noQuorum("a linearizable read", after: timeout) }) {
                    try await self.raft.read(linearizable: true, body)
                }
            } catch ManagerError.readInterrupted {
            } catch ManagerError.raft(.noLeader) {
            } catch ManagerError.raft(.notLeader) {
            } catch ManagerError.raft(.leadershipTransferInProgress) {
            }
            try await Task.sleep(for: Self.forwardRetryDelay)
        }
    }

    /// Proposes `command` through the leader and returns its changes.
    @discardableResult
    func propose(_ command: ClusterCommand) async throws -> [ClusterEvent] {
        let reply = try await onLeader(.propose(command: command, timeMilliseconds: Support.nowMilliseconds()))
        guard case .events(let events) = reply else { return [] }
        return events
    }

    /// Carries out `request` on the leader: here if this member leads,
    /// otherwise over RPC; retried across elections until `proposalTimeout`.
    func onLeader(_ request: LeaderRequest) async throws -> LeaderReply {
        let timeout = settings.proposalTimeout
        let deadline = ContinuousClock.now + timeout
        var lastError = APIError.noQuorum("the write", after: timeout)
        while ContinuousClock.now < deadline {
            let remaining = deadline - ContinuousClock.now
            let status = raft.status
            do {
                if status.role == .leader, case .propose(let command, let time) = request {
                    // The Raft loop bounds the wait itself: no timer task and
                    // no extra task hop on every write.
                    try requireLeader()
                    do {
                        return .events(try await raft.propose(command, timeMilliseconds: time, validate: true, timeout: remaining))
                    } catch ManagerError.timedOut {
                        throw APIError.noQuorum("the write", after: timeout)
                    }
                } else if status.role == .leader {
                    return try await withTimeout(remaining, onTimeout: { APIError.noQuorum("the write", after: timeout) }) {
                        try await self.executeAsLeader(request)
                    }
                } else if status.leader != 0, let address = address(of: status.leader) {
                    return try await peers.call(address, ManagerMethods.leader, request, timeout: remaining, as: LeaderReply.self)
                }
            } catch {
                let apiError = APIError.from(error)
                // Retry what a new leader will accept; report everything else.
                guard ["not_leader", "membership_change_in_progress", "unavailable", "stopping"].contains(apiError.code) else { throw apiError }
                if apiError.code != "unavailable" && apiError.code != "stopping" { lastError = apiError }
            }
            try await Task.sleep(for: Self.forwardRetryDelay)
        }
        if lastError.code == "not_leader" { lastError = APIError.noQuorum("the write", after: timeout) }
        throw lastError
    }

    private func requireLeader() throws {
        guard raft.status.role == .leader else { throw APIError.notLeader("this manager is no longer the leader") }
    }

    func executeAsLeader(_ request: LeaderRequest) async throws -> LeaderReply {
        try requireLeader()
        switch request {
        case .propose(let command, let time):
            // Validated on the Raft thread in the same trip as the proposal:
            // a command the state refuses never reaches the log.
            return .events(try await raft.propose(command, timeMilliseconds: time, validate: true))

        case .addLearner(let id, let memberID, let address):
            guard let node = try await raft.read(linearizable: false, { $0.node(id) }) else { throw APIError.notFound("node \(id)") }
            let wanted = Node.ManagerStatus(raftID: memberID, address: address)
            if node.managerStatus != wanted {
                _ = try await raft.propose(.setManagerStatus(id: id, managerStatus: wanted), timeMilliseconds: Support.nowMilliseconds())
            }
            setAddress(memberID, address)
            if !raft.status.configuration.contains(memberID) {
                try await changeMembership(.addLearner(memberID)) { $0.contains(memberID) }
            }
            return .commitIndex(raft.status.commitIndex)

        case .promoteMember(let memberID):
            let configuration = raft.status.configuration
            if configuration.isLearner(memberID) {
                try await changeMembership(.promote(memberID)) { $0.isVoter(memberID) }
            } else if !configuration.isVoter(memberID) {
                throw APIError(status: 409, code: "failed_precondition", message: "Raft member \(memberID) is not in the group", hint: "join again")
            }
            return .done

        case .demote(let id):
            try await demote(id)
            return .done

        case .removeNode(let id, let force):
            guard let node = try await raft.read(linearizable: false, { $0.node(id) }) else { throw APIError.notFound("node \(id)") }
            if node.managerStatus != nil || node.spec.role == .manager {
                guard force else {
                    throw APIError(status: 409, code: "failed_precondition", message: "node \(id) is a manager",
                                   hint: "demote it first with `shoal node demote \(id)`, or remove it with --force")
                }
                try await demote(id)
            }
            return .events(try await raft.propose(.removeNode(id: id, expectedVersion: nil), timeMilliseconds: Support.nowMilliseconds()))

        case .heartbeat(let nodeID):
            try await dispatcher.leaderHeartbeat(nodeID)
            return .done

        case .rotateJoinToken(let roleName):
            guard let role = NodeRole(rawValue: roleName) else { throw APIError.invalid("role", "'\(roleName)' must be worker or manager") }
            let existing = try await raft.read(linearizable: false) { $0.configs.first { $0.spec.name == JoinTokens.configName } }
            var current = existing.flatMap { try? Support.decode(JoinTokens.self, from: $0.spec.data) }
                ?? JoinTokens(worker: tokens.token(for: .worker).description, manager: tokens.token(for: .manager).description)
            let fresh = JoinToken.generate(root: authority.certificate)
            switch role {
            case .worker: current.worker = fresh.description
            case .manager: current.manager = fresh.description
            }
            var generator = SecureRandom()
            let create = ClusterCommand.createConfig(id: ObjectID.random(using: &generator), spec: Config.Spec(name: JoinTokens.configName, data: Support.encode(current)))
            let command: ClusterCommand = existing.map { .batch([.removeConfig(id: $0.id), create]) } ?? create
            _ = try await raft.propose(command, timeMilliseconds: Support.nowMilliseconds())
            tokens.replace(role, with: fresh)
            return .token(fresh.description)
        }
    }

    /// Changes the membership; a refusal because the change is already in
    /// place (a retried request, a status not yet published) counts as done.
    private func changeMembership(_ change: ConfigurationChange, done: (Raft.Configuration) -> Bool) async throws {
        do {
            try await raft.changeMembership(change)
        } catch ManagerError.raft(.invalidConfigurationChange(let reason)) {
            try await Task.sleep(for: .milliseconds(20))
            if done(raft.status.configuration) { return }
            throw APIError.from(ManagerError.raft(.invalidConfigurationChange(reason)))
        }
    }

    /// Applies `command` to a copy of the leader's state: a bad command is
    /// refused before it reaches the log. A version conflict seen while this
    /// copy trails the commit index is left to the real apply.
    private func demote(_ id: ObjectID) async throws {
        guard var node = try await raft.read(linearizable: false, { $0.node(id) }) else { throw APIError.notFound("node \(id)") }
        if let status = node.managerStatus {
            let configuration = raft.status.configuration
            if configuration.isVoter(status.raftID) && configuration.voters.count == 1 {
                throw APIError(status: 409, code: "failed_precondition", message: "node \(id) is the last manager; demoting it would leave the cluster without managers",
                               hint: "promote another node first")
            }
            if status.raftID == raftID {
                // Hand leadership to another voter; the request is retried there.
                let others = configuration.voters.filter { $0 != raftID }
                if let target = others.first(where: isReachable) ?? others.first { raft.transferLeadership(to: target) }
                throw APIError.notLeader("leadership is moving away from the manager being demoted")
            }
            if configuration.contains(status.raftID) {
                try await changeMembership(.remove(status.raftID)) { !$0.contains(status.raftID) }
            }
            _ = try await raft.propose(.setManagerStatus(id: id, managerStatus: nil), timeMilliseconds: Support.nowMilliseconds())
            setAddress(status.raftID, nil)
            guard let updated = try await raft.read(linearizable: false, { $0.node(id) }) else { return }
            node = updated
        }
        if node.spec.role != .worker {
            var spec = node.spec
            spec.role = .worker
            _ = try await raft.propose(.updateNodeSpec(id: id, expectedVersion: node.meta.version, spec: spec), timeMilliseconds: Support.nowMilliseconds())
        }
    }

    // MARK: RPC methods

    struct Empty: Codable, Sendable {}

    private func registerJSON<Request: Decodable & Sendable, Value: Codable & Sendable>(
        _ method: String, access: RPCAccess, _ type: Request.Type,
        _ handler: @escaping @Sendable (NodeIdentity?, Request) async throws -> Value
    ) {
        rpcServer.register(method, access: access) { request in
            var reply = RPCReply<Value>()
            do {
                let decoded = try Support.decode(Request.self, from: request.payload)
                reply.value = try await handler(request.caller, decoded)
            } catch {
                reply.error = APIError.from(error)
            }
            return Support.encode(reply)
        }
    }

    private func caller(_ identity: NodeIdentity?) throws -> (ObjectID, NodeRole) {
        guard let identity, let id = ObjectID(identity.nodeID) else {
            throw APIError(status: 403, code: "permission_denied", message: "the caller's certificate names no node", hint: "join the cluster")
        }
        return (id, identity.role)
    }

    private func registerMethods() {
        RPCPeerTransport.register(on: rpcServer, manager: raft)
        issuer.registerJoin(on: rpcServer)
        issuer.registerRenewal(on: rpcServer)
        dispatcher.register(on: rpcServer)
        registerTaskLogs()

        registerJSON(ManagerMethods.ping, access: .managers, Empty.self) { _, _ in Empty() }

        registerJSON(ManagerMethods.leader, access: .managers, LeaderRequest.self) { [unowned self] _, request in
            let timeout = settings.proposalTimeout
            return try await withTimeout(timeout, onTimeout: { APIError.noQuorum("the write", after: timeout) }) {
                try await self.executeAsLeader(request)
            }
        }

        registerJSON(ManagerMethods.register, access: .anyNode, NodeRegistration.self) { [unowned self] identity, registration in
            let (id, role) = try caller(identity)
            // Ready only once the node's agent opens a dispatcher session (Dispatcher.open), as a Swarm node;
            // a known node keeps the state its session and heartbeats gave it.
            var status = Node.Status(state: .unknown, message: Dispatcher.awaitingAgentMessage, hostname: registration.hostname,
                                     address: registration.address, platform: Self.platform)
            let existing = try await read { $0.node(id)?.status }
            if let existing {
                status.state = existing.state
                status.message = existing.message
                status.resources = existing.resources
                try await propose(.updateNodeStatus(id: id, status: status))
            } else {
                do {
                    try await propose(.createNode(id: id, spec: Node.Spec(role: role == .manager ? .manager : .worker), status: status, managerStatus: nil))
                } catch let error as APIError where error.code == "already_exists" {
                    try await propose(.updateNodeStatus(id: id, status: status))
                }
            }
            return Empty()
        }

        registerJSON(ManagerMethods.leave, access: .anyNode, Empty.self) { [unowned self] identity, _ in
            let (id, _) = try caller(identity)
            guard var status = try await read({ $0.node(id)?.status }) else { throw APIError.notFound("node \(id)") }
            status.state = .down
            status.message = "left the cluster"
            try await propose(.updateNodeStatus(id: id, status: status))
            return Empty()
        }

        registerJSON(ManagerMethods.nodeSelf, access: .anyNode, Empty.self) { [unowned self] identity, _ in
            let (id, _) = try caller(identity)
            let (node, managers) = try await read { state in
                (state.node(id), state.nodes.compactMap { $0.managerStatus?.address })
            }
            return NodeSelfReply(node: node, managerAddresses: managers.sorted())
        }

        registerJSON(ManagerMethods.certificate, access: .anyNode, CertificateRequestMessage.self) { [unowned self] identity, request in
            let (id, _) = try caller(identity)
            guard let node = try await read({ $0.node(id) }) else { throw APIError.notFound("node \(id)") }
            let csr = try CertificateSigningRequest(pemEncoded: request.csrPEM)
            let role: NodeRole = node.spec.role == .manager ? .manager : .worker
            let certificate = try authority.issue(for: csr, nodeID: id.rawValue, role: role, lifetime: settings.nodeCertificateLifetime)
            return CertificateReplyMessage(certificatePEM: certificate.pemEncoded, rootPEM: authority.certificate.pemEncoded)
        }

        registerJSON(ManagerMethods.keys, access: .managers, Empty.self) { [unowned self] _, _ in
            ManagerKeysReply(rootKeyPEM: try authority.key.pemEncoded(), secretsKey: secretBox.key, managers: knownManagers)
        }

        registerJSON(ManagerMethods.join, access: .managers, ManagerJoinRequest.self) { [unowned self] identity, request in
            let (id, _) = try caller(identity)
            guard request.raftID == Support.raftID(forNodeID: id.rawValue) else {
                throw APIError.invalid("raftID", "\(request.raftID) is not the Raft id of node \(id)")
            }
            _ = try Support.parseAddress(request.address, defaultPort: 4242, field: "address")
            return try await onLeader(.addLearner(nodeID: id, raftID: request.raftID, address: request.address))
        }

        registerJSON(ManagerMethods.promote, access: .managers, ManagerJoinRequest.self) { [unowned self] identity, request in
            let (id, _) = try caller(identity)
            guard request.raftID == Support.raftID(forNodeID: id.rawValue) else {
                throw APIError.invalid("raftID", "\(request.raftID) is not the Raft id of node \(id)")
            }
            return try await onLeader(.promoteMember(raftID: request.raftID))
        }
    }

    static var platform: String {
        #if arch(x86_64)
        return "linux/amd64"
        #elseif arch(arm64)
        return "linux/arm64"
        #else
        return "linux/unknown"
        #endif
    }

    // MARK: Joining an existing group

    /// The last steps of joining as a manager, from a fresh (or unfinished)
    /// log: the leader records our address and adds us as a learner; we wait
    /// until we applied what it had committed then; the leader promotes us.
    func joinRaft(contacts: [String]) async throws {
        let request = ManagerJoinRequest(raftID: raftID, address: state.advertiseAddress)
        let target: LeaderReply = try await peers.callAny(contacts, ManagerMethods.join, request, timeout: settings.joinTimeout)
        guard case .commitIndex(let commitIndex) = target else { return }
        let deadline = ContinuousClock.now + settings.joinTimeout
        while raft.status.appliedIndex < commitIndex {
            guard ContinuousClock.now < deadline else {
                throw APIError(status: 503, code: "catch_up_timeout", message: "this manager did not catch up with the leader's log (index \(commitIndex)) within \(settings.joinTimeout)",
                               hint: "check that the leader can reach this node's advertise address \(state.advertiseAddress)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let all = Array(Set(contacts + knownManagers.filter { $0.key != raftID }.map(\.value))).sorted()
        let _: LeaderReply = try await peers.callAny(all, ManagerMethods.promote, request, timeout: settings.joinTimeout)
    }

    func markJoinComplete() {
        state.joinComplete = true
    }
}

import ClusterState
import Foundation
import Net
import RPC

/// A daemon acting as a worker. Until the agent issue lands it keeps its
/// certificate, announces itself, and follows its desired role: when a
/// manager promotes it, it asks for a manager certificate and becomes one.
final class WorkerNode: @unchecked Sendable {
    let directory: DataDirectory
    private(set) var state: NodeState
    let credentials: CredentialStore
    let peers: PeerCaller
    private(set) var renewal: NodeCertificateRenewal!
    private var loop: Task<Void, Never>?
    private let lock = NSLock()
    var onRoleChange: (@Sendable (Node.Role) -> Void)?

    static let reconcilePeriod: Duration = .seconds(1)

    init(directory: DataDirectory, state: NodeState) throws {
        self.directory = directory
        self.state = state
        credentials = try CredentialStore(try directory.loadCredentials())
        let store = credentials
        peers = PeerCaller(context: { store.clientContext })
        renewal = NodeCertificateRenewal(store: store, directory: directory, managers: { [weak self] in self?.managerAddresses ?? [] })
    }

    var managerAddresses: [String] { lock.withLock { state.managerAddresses } }

    func start() {
        renewal.start()
        loop = Task { [weak self] in
            // At once, then each period: a worker that just joined knows only the manager it
            // joined through, and must learn the others before that one can fail.
            while !Task.isCancelled {
                guard let self else { return }
                await self.reconcile()
                try? await Task.sleep(for: Self.reconcilePeriod)
            }
        }
    }

    func stop() async {
        loop?.cancel()
        await renewal.stop()
        await peers.closeAll()
    }

    /// Announces this node to the managers (creates its Node, or marks it ready).
    func register(hostname: String, timeout: Duration) async throws {
        let address = Support.host(of: try Support.parseAddress(state.advertiseAddress, defaultPort: 0, field: "advertise address"))
        let _: ManagerNode.Empty = try await peers.callAny(managerAddresses, ManagerMethods.register,
                                                         NodeRegistration(hostname: hostname, address: address), timeout: timeout)
    }

    private func reconcile() async {
        guard let reply = try? await peers.callAny(managerAddresses, ManagerMethods.nodeSelf, ManagerNode.Empty(), timeout: .seconds(2), as: NodeSelfReply.self) else { return }
        if !reply.managerAddresses.isEmpty {
            let changed: Bool = lock.withLock {
                guard state.managerAddresses != reply.managerAddresses else { return false }
                state.managerAddresses = reply.managerAddresses
                return true
            }
            if changed { try? directory.save(lock.withLock { state }) }
        }
        if let node = reply.node, node.spec.role == .manager {
            onRoleChange?(.manager)
        }
    }
}

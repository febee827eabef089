import Agent
import ClusterState
import Foundation
import Net
import RPC

/// A worker node without containers, for the manager's scale tests and
/// `shoal-bench dispatcher`: everything a real worker does on the wire,
/// nothing it does on its host.
///
/// It joins through the real path (``NodeJoiner``: a fresh key, a CSR, a
/// handshake that pins the cluster CA by the join token, the join call;
/// then `shoal.node.register` over mutual TLS with the issued certificate)
/// and keeps its session through the agent's own ``AgentSession``
/// (``RPCDispatcherConnector``: mutual TLS, session stream, heartbeats,
/// status batches). Behind the session sits a fake runtime: a task
/// assigned to run is reported `running` at once, one told to stop is
/// reported `shutdown`, a removed one is forgotten.
public final class SimulatedWorker: @unchecked Sendable {
    public let nodeID: ObjectID
    public let hostname: String
    private let credentials: CredentialStore
    private var session: AgentSession!
    private let lock = NSLock()
    // Guarded by `lock`: each known task's observed state.
    private var observed: [ObjectID: ServiceTask.State] = [:]
    private var batchesReceived = 0

    /// What the simulated host reports (every worker the same).
    public static let resources = Node.Resources(nanoCPUs: 4_000_000_000, memoryBytes: 8 << 30)

    private init(nodeID: ObjectID, hostname: String, credentials: CredentialStore, manager: String) {
        self.nodeID = nodeID
        self.hostname = hostname
        self.credentials = credentials
        let store = credentials
        let connector = RPCDispatcherConnector(addresses: { [manager] }, context: { store.clientContext })
        session = AgentSession(connector: connector, request: { [hostname] in
            SessionRequest(hostname: hostname, address: "127.0.0.1", platform: ManagerNode.platform, resources: Self.resources)
        }, onBatch: { [weak self] batch, _ in self?.apply(batch) })
    }

    /// Joins the cluster of the manager at `manager` (HOST:PORT) with a
    /// worker `token`, as `shoal join` does, and registers the node.
    public static func join(manager: String, token: JoinToken, hostname: String, timeout: Duration = .seconds(30)) async throws -> SimulatedWorker {
        let address = try Support.parseAddress(manager, defaultPort: 4242, field: "manager address")
        let issued = try await NodeJoiner.join(address: address, token: token, role: .worker, deadline: .now + timeout)
        guard let identity = issued.identity, let nodeID = ObjectID(identity.nodeID) else {
            throw APIError(status: 500, code: "internal", message: "the manager issued a certificate that names no node", hint: "check the manager's CA")
        }
        let credentials = try CredentialStore(issued)
        let peers = PeerCaller(context: { credentials.clientContext })
        do {
            let _: ManagerNode.Empty = try await peers.call(manager, ManagerMethods.register, NodeRegistration(hostname: hostname, address: "127.0.0.1"),
                                                            timeout: timeout)
        } catch {
            await peers.closeAll()
            throw error
        }
        await peers.closeAll()
        return SimulatedWorker(nodeID: nodeID, hostname: hostname, credentials: credentials, manager: manager)
    }

    /// Opens the session (and keeps reopening it) until ``stop()``.
    public func start() { session.start() }

    /// Ends the session and stops heartbeating, as a worker that died: the
    /// manager marks the node down once its heartbeat deadline passes.
    public func stop() async { await session.stop() }

    public var isConnected: Bool { session.isConnected }
    public var sessionCount: Int { session.sessionCount }
    /// Assignment batches received so far.
    public var batchCount: Int { lock.withLock { batchesReceived } }

    /// The tasks this worker reported running and was not told to stop.
    public var runningTaskIDs: [ObjectID] {
        lock.withLock { observed.filter { $0.value == .running }.map(\.key).sorted() }
    }

    /// The fake runtime: starts at once, stops at once.
    private func apply(_ batch: AssignmentBatch) {
        lock.withLock {
            batchesReceived += 1
            if batch.full {
                let listed = Set(batch.tasks.map(\.id))
                for id in observed.keys where !listed.contains(id) { forgetLocked(id) }
            }
            for id in batch.removedTaskIDs { forgetLocked(id) }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            for task in batch.tasks {
                let known = max(observed[task.id] ?? task.status.state, task.status.state)
                observed[task.id] = known
                if task.desiredState > .running {
                    guard !known.isTerminal else { continue }
                    reportLocked(task.id, ServiceTask.Status(state: .shutdown, timestampMilliseconds: now, message: "stopped (simulated)"))
                } else if known >= .assigned && known < .running {
                    reportLocked(task.id, ServiceTask.Status(state: .running, timestampMilliseconds: now, message: "started (simulated)",
                                                             containerID: "simulated-" + task.id.rawValue))
                }
            }
        }
    }

    /// Under `lock`, so that a task's reports queue in the order decided.
    private func reportLocked(_ taskID: ObjectID, _ status: ServiceTask.Status) {
        observed[taskID] = status.state
        session.queue(taskID, status)
    }

    private func forgetLocked(_ taskID: ObjectID) {
        observed[taskID] = nil
        session.forget(taskID)
    }
}

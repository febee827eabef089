/// Every change to the cluster's state is one of these, proposed through Raft
/// and applied in log order on every manager. A closed set: `apply` handles
/// each case, and an unknown one from a newer version fails to decode.
///
/// Writers of desired state (spec, desired task state) pass the version they
/// read as `expectedVersion`: compare-and-set, so concurrent writers never
/// lose an update. Observed state (node and task status) is written by its
/// single owner and needs no version.
public indirect enum ClusterCommand: Codable, Sendable, Equatable {
    case createNode(id: ObjectID, spec: Node.Spec, status: Node.Status, managerStatus: Node.ManagerStatus?)
    case updateNodeSpec(id: ObjectID, expectedVersion: UInt64, spec: Node.Spec)
    case updateNodeStatus(id: ObjectID, status: Node.Status)
    case setManagerStatus(id: ObjectID, managerStatus: Node.ManagerStatus?)
    case removeNode(id: ObjectID, expectedVersion: UInt64?)

    case createService(id: ObjectID, spec: Service.Spec)
    /// `force` bumps the service's `forceUpdate`, replacing its tasks even if the spec is unchanged.
    case updateService(id: ObjectID, expectedVersion: UInt64, spec: Service.Spec, force: Bool)
    /// Restores the spec the last update replaced; the service's update status becomes `rollback_started`.
    case rollbackService(id: ObjectID, expectedVersion: UInt64)
    /// The orchestrator's word on a rollout: paused, completed, or a new
    /// message (its start index and time stay). Needs an update status.
    case setServiceUpdateStatus(id: ObjectID, expectedVersion: UInt64?, state: UpdateStatus.State, message: String)
    case removeService(id: ObjectID, expectedVersion: UInt64?)

    case createTasks([NewTask])
    /// The scheduler's decision: a pending task goes to a node.
    case assignTask(id: ObjectID, expectedVersion: UInt64, nodeID: ObjectID)
    /// The agent's report; state only moves forward.
    case updateTaskStatus(id: ObjectID, status: ServiceTask.Status)
    case setTaskDesiredState(id: ObjectID, expectedVersion: UInt64?, desiredState: ServiceTask.State)
    case removeTasks(ids: [ObjectID])

    case createSecret(id: ObjectID, spec: Secret.Spec)
    case removeSecret(id: ObjectID)
    case createConfig(id: ObjectID, spec: Config.Spec)
    case removeConfig(id: ObjectID)
    case createNetwork(id: ObjectID, spec: Network.Spec)
    case removeNetwork(id: ObjectID)
    case createRoute(id: ObjectID, spec: Route.Spec)
    case updateRoute(id: ObjectID, expectedVersion: UInt64, spec: Route.Spec)
    case removeRoute(id: ObjectID)

    /// All of them or none.
    case batch([ClusterCommand])

    /// A task the orchestrator creates.
    public struct NewTask: Codable, Sendable, Equatable {
        public var id: ObjectID
        public var serviceID: ObjectID
        public var slot: Int
        public var nodeID: ObjectID?
        /// Carried into ``ServiceTask/restartHistoryMilliseconds`` (the orchestrator's restart bookkeeping).
        public var restartHistoryMilliseconds: [Int64]

        public init(id: ObjectID, serviceID: ObjectID, slot: Int, nodeID: ObjectID? = nil, restartHistoryMilliseconds: [Int64] = []) {
            self.id = id
            self.serviceID = serviceID
            self.slot = slot
            self.nodeID = nodeID
            self.restartHistoryMilliseconds = restartHistoryMilliseconds
        }

        private enum CodingKeys: String, CodingKey { case id, serviceID, slot, nodeID, restartHistoryMilliseconds }

        /// Commands proposed before `restartHistoryMilliseconds` existed decode with an empty history.
        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decode(ObjectID.self, forKey: .id)
            serviceID = try container.decode(ObjectID.self, forKey: .serviceID)
            slot = try container.decode(Int.self, forKey: .slot)
            nodeID = try container.decodeIfPresent(ObjectID.self, forKey: .nodeID)
            restartHistoryMilliseconds = try container.decodeIfPresent([Int64].self, forKey: .restartHistoryMilliseconds) ?? []
        }
    }
}

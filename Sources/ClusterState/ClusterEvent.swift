/// One change `apply` made, for watchers (`shoal events`, the dispatcher's
/// assignment streams, the orchestrator's dirty marks).
public struct ClusterEvent: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable { case created, updated, removed }

    public var index: UInt64
    public var action: Action
    public var kind: ObjectKind
    public var id: ObjectID
    /// The object after the change (before it, for `removed`).
    public var object: ClusterObject

    public init(index: UInt64, action: Action, object: ClusterObject) {
        self.index = index
        self.action = action
        self.kind = object.kind
        self.id = object.id
        self.object = object
    }
}

/// Any stored object.
public enum ClusterObject: Codable, Sendable, Equatable {
    case node(Node)
    case service(Service)
    case task(ServiceTask)
    case secret(Secret)
    case config(Config)
    case network(Network)
    case route(Route)
    case rollout(Rollout)

    public var kind: ObjectKind {
        switch self {
        case .node: return .node
        case .service: return .service
        case .task: return .task
        case .secret: return .secret
        case .config: return .config
        case .network: return .network
        case .route: return .route
        case .rollout: return .rollout
        }
    }

    public var id: ObjectID {
        switch self {
        case .node(let object): return object.id
        case .service(let object): return object.id
        case .task(let object): return object.id
        case .secret(let object): return object.id
        case .config(let object): return object.id
        case .network(let object): return object.id
        case .route(let object): return object.id
        case .rollout(let object): return object.id
        }
    }
}

/// A rollout in progress, as an explicit state machine stored in the log so
/// it survives a manager failover. The rollout issues fill in its steps.
public struct Rollout: Codable, Sendable, Equatable, Hashable {
    public enum Kind: String, Codable, Sendable { case rolling, blueGreen = "blue-green", canary, shadow }
    public enum State: String, Codable, Sendable { case running, paused, completed, rolledBack = "rolled-back", failed }

    public struct Spec: Codable, Sendable, Equatable, Hashable {
        public var kind: Kind
        public var serviceID: ObjectID
        public var targetServiceID: ObjectID?

        public init(kind: Kind, serviceID: ObjectID, targetServiceID: ObjectID? = nil) {
            self.kind = kind
            self.serviceID = serviceID
            self.targetServiceID = targetServiceID
        }
    }

    public var meta: ObjectMeta
    public var spec: Spec
    public var state: State
    public var step: Int
    public var message: String
    public var id: ObjectID { meta.id }
}

/// A host in the cluster. Managers write `spec` (desired: role,
/// availability, labels); the node itself reports `status` (observed).
public struct Node: Codable, Sendable, Equatable, Hashable {
    public enum Role: String, Codable, Sendable, CaseIterable { case manager, worker }
    public enum Availability: String, Codable, Sendable, CaseIterable { case active, pause, drain }
    public enum State: String, Codable, Sendable, CaseIterable { case unknown, down, ready, disconnected }

    public struct Spec: Codable, Sendable, Equatable, Hashable {
        public var role: Role
        public var availability: Availability
        public var labels: [String: String]

        public init(role: Role, availability: Availability = .active, labels: [String: String] = [:]) {
            self.role = role
            self.availability = availability
            self.labels = labels
        }
    }

    public struct Resources: Codable, Sendable, Equatable, Hashable {
        public var nanoCPUs: Int64
        public var memoryBytes: Int64

        public init(nanoCPUs: Int64 = 0, memoryBytes: Int64 = 0) {
            self.nanoCPUs = nanoCPUs
            self.memoryBytes = memoryBytes
        }
    }

    public struct Status: Codable, Sendable, Equatable, Hashable {
        public var state: State
        public var message: String
        public var hostname: String
        public var address: String
        public var platform: String
        public var resources: Resources

        public init(state: State = .unknown, message: String = "", hostname: String = "", address: String = "",
                    platform: String = "linux/amd64", resources: Resources = Resources()) {
            self.state = state
            self.message = message
            self.hostname = hostname
            self.address = address
            self.platform = platform
            self.resources = resources
        }
    }

    /// Set for managers: the Raft member behind this node.
    public struct ManagerStatus: Codable, Sendable, Equatable, Hashable {
        public var raftID: UInt64
        public var address: String

        public init(raftID: UInt64, address: String) {
            self.raftID = raftID
            self.address = address
        }
    }

    public var meta: ObjectMeta
    public var spec: Spec
    public var status: Status
    public var managerStatus: ManagerStatus?

    public var id: ObjectID { meta.id }
}

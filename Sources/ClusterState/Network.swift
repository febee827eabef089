/// A network tasks attach to.
public struct Network: Codable, Sendable, Equatable, Hashable {
    public struct Spec: Codable, Sendable, Equatable, Hashable {
        public var name: String
        public var labels: [String: String]
        /// IPv4 subnet in CIDR notation, e.g. `10.10.0.0/24`.
        public var subnet: String

        public init(name: String, labels: [String: String] = [:], subnet: String) {
            self.name = name
            self.labels = labels
            self.subnet = subnet
        }
    }

    public var meta: ObjectMeta
    public var spec: Spec
    public var id: ObjectID { meta.id }
}

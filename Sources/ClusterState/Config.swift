/// Non-secret configuration bytes for tasks.
public struct Config: Codable, Sendable, Equatable, Hashable {
    public struct Spec: Codable, Sendable, Equatable, Hashable {
        public var name: String
        public var labels: [String: String]
        public var data: [UInt8]

        public init(name: String, labels: [String: String] = [:], data: [UInt8]) {
            self.name = name
            self.labels = labels
            self.data = data
        }
    }

    public var meta: ObjectMeta
    public var spec: Spec
    public var id: ObjectID { meta.id }
}

/// Sensitive bytes for tasks. `data` is what the manager stored: the manager
/// encrypts it before proposing, so the log and snapshots never hold plaintext.
public struct Secret: Codable, Sendable, Equatable, Hashable {
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

/// A published port's traffic split: weighted backends, each a service
/// (one version of an application). Weights sum to 100.
public struct Route: Codable, Sendable, Equatable, Hashable {
    public struct Backend: Codable, Sendable, Equatable, Hashable {
        public var serviceID: ObjectID
        public var weight: Int

        public init(serviceID: ObjectID, weight: Int) {
            self.serviceID = serviceID
            self.weight = weight
        }
    }

    public struct Spec: Codable, Sendable, Equatable, Hashable {
        public var name: String
        public var publishedPort: Int
        public var backends: [Backend]
        /// Clients keep their backend while weights allow it.
        public var sticky: Bool
        /// A service that receives a copy of the traffic whose answers are dropped.
        public var mirrorServiceID: ObjectID?

        public init(name: String, publishedPort: Int, backends: [Backend], sticky: Bool = false, mirrorServiceID: ObjectID? = nil) {
            self.name = name
            self.publishedPort = publishedPort
            self.backends = backends
            self.sticky = sticky
            self.mirrorServiceID = mirrorServiceID
        }
    }

    public var meta: ObjectMeta
    public var spec: Spec
    public var id: ObjectID { meta.id }
}

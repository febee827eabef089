/// Non-secret configuration bytes for tasks.
public struct Config: Codable, Sendable, Equatable, Hashable {
    public typealias Spec = NamedPayload

    public var meta: ObjectMeta
    public var spec: Spec
    public var id: ObjectID { meta.id }
}

/// Sensitive bytes for tasks. `data` is what the manager stored: the manager
/// encrypts it before proposing, so the log and snapshots never hold plaintext.
public struct Secret: Codable, Sendable, Equatable, Hashable {
    public typealias Spec = NamedPayload

    public var meta: ObjectMeta
    public var spec: Spec
    public var id: ObjectID { meta.id }
}

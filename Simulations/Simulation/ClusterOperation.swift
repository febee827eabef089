/// One cluster API call as its client saw it, with the log position that
/// witnesses where it took effect: the history ``ClusterInvariants`` judges.
public struct ClusterOperation: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// `createService` of a service with a fixed id and name.
        case create
        /// `updateService` with compare-and-set on `expectedVersion`.
        case update
        /// A linearizable read of one service (ReadIndex).
        case read
    }

    /// What the API answered.
    public enum Outcome: Sendable, Equatable, CustomStringConvertible {
        /// The write took effect; the service is now at this version.
        case written(version: UInt64)
        /// The write was refused by `apply` (version conflict, not found,
        /// already exists): it changed nothing.
        case refused(String)
        /// The service as read: its version and image, or nil when absent.
        case read(version: UInt64, image: String)
        case absent

        public var description: String {
            switch self {
            case .written(let version): return "written v\(version)"
            case .refused(let reason): return "refused (\(reason))"
            case .read(let version, let image): return "read v\(version) \(image)"
            case .absent: return "absent"
            }
        }
    }

    public var client: UInt64
    public var sequence: UInt64
    public var kind: Kind
    /// Services are numbered from 1; service n has id and name `service-n`.
    public var service: UInt64
    public var expectedVersion: UInt64
    /// The image a write sets.
    public var image: String
    public var invokeTime: UInt64
    /// Nil when the client gave up: the outcome is unknown.
    public var returnTime: UInt64?
    public var outcome: Outcome?
    /// A write: the index of its committed entry. A read: the index its
    /// member had applied when it answered. Nil for a write that never
    /// committed (only possible when the outcome is unknown).
    public var witnessIndex: UInt64?

    public var description: String {
        let end = returnTime.map { "\($0)" } ?? "?"
        let what: String
        switch kind {
        case .create: what = "create(s\(service), \(image))"
        case .update: what = "update(s\(service), expect v\(expectedVersion), \(image))"
        case .read: what = "read(s\(service))"
        }
        return "client \(client) #\(sequence) \(what) -> \(outcome.map { "\($0)" } ?? "unknown") at index \(witnessIndex.map { "\($0)" } ?? "-") [\(invokeTime), \(end)]"
    }
}

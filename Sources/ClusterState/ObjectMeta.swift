/// What every stored object carries besides its spec and status.
public struct ObjectMeta: Codable, Sendable, Equatable, Hashable {
    public var id: ObjectID
    /// The log index of the command that last wrote the object; the token a
    /// writer presents for compare-and-set.
    public var version: UInt64
    public var createdIndex: UInt64
    /// Proposer wall-clock times carried in the commands, in milliseconds
    /// since the Unix epoch (the core reads no clock).
    public var createdAtMilliseconds: Int64
    public var updatedAtMilliseconds: Int64

    public init(id: ObjectID, version: UInt64, createdIndex: UInt64, createdAtMilliseconds: Int64, updatedAtMilliseconds: Int64) {
        self.id = id
        self.version = version
        self.createdIndex = createdIndex
        self.createdAtMilliseconds = createdAtMilliseconds
        self.updatedAtMilliseconds = updatedAtMilliseconds
    }

    mutating func touch(_ context: ApplyContext) {
        version = context.index
        updatedAtMilliseconds = context.timeMilliseconds
    }

    static func new(_ id: ObjectID, _ context: ApplyContext) -> ObjectMeta {
        ObjectMeta(id: id, version: context.index, createdIndex: context.index,
                   createdAtMilliseconds: context.timeMilliseconds, updatedAtMilliseconds: context.timeMilliseconds)
    }
}

/// Where in the log a command is applied, and the proposer's clock reading.
public struct ApplyContext: Sendable, Equatable {
    public var index: UInt64
    public var timeMilliseconds: Int64

    public init(index: UInt64, timeMilliseconds: Int64) {
        self.index = index
        self.timeMilliseconds = timeMilliseconds
    }
}

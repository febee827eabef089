/// One line of `POST /v1/containers/run`'s stream: a log entry as stored
/// (`{"log":…,"stream":…,"time":…}`) or, last, the ``ContainerRunEnd``.
///
/// Read with ``JSONTree`` rather than `JSONDecoder` (whose first use costs
/// more than the rest of the CLI's `run`), with `Decodable`'s rules: absent
/// or null fields are nil, and a field of the wrong type (or an `exit`
/// without its `statusCode` and `oomKilled`) makes the whole line unreadable.
public struct ContainerRunStreamLine: Equatable, Sendable {
    public var log: String?
    public var stream: String?
    public var time: String?
    public var exit: Exit?
    public var startError: String?
    public var startErrorCode: String?

    /// ``ContainerWaitReply``'s fields.
    public struct Exit: Equatable, Sendable {
        public var statusCode: Int32
        public var oomKilled: Bool
        public var error: String?
    }

    public init(log: String? = nil, stream: String? = nil, time: String? = nil, exit: Exit? = nil,
                startError: String? = nil, startErrorCode: String? = nil) {
        self.log = log
        self.stream = stream
        self.time = time
        self.exit = exit
        self.startError = startError
        self.startErrorCode = startErrorCode
    }

    /// The line's fields; nil when it is not a JSON object of this shape.
    public init?(line: String) {
        guard let tree = JSONTree.parse(line), case .object = tree else { return nil }
        guard let log = Self.string(tree["log"]), let stream = Self.string(tree["stream"]), let time = Self.string(tree["time"]),
              let startError = Self.string(tree["startError"]), let startErrorCode = Self.string(tree["startErrorCode"]),
              let exit = Self.exit(tree["exit"]) else { return nil }
        self.init(log: log, stream: stream, time: time, exit: exit, startError: startError, startErrorCode: startErrorCode)
    }

    /// Outer nil: the wrong type; inner nil: absent or null.
    private static func string(_ value: JSONTree?) -> String?? {
        switch value {
        case nil, .null?: return .some(nil)
        case .string(let text)?: return .some(text)
        default: return nil
        }
    }

    private static func exit(_ value: JSONTree?) -> Exit?? {
        guard let value else { return .some(nil) }
        if case .null = value { return .some(nil) }
        guard case .object = value, case .number(let text)? = value["statusCode"], let statusCode = Int32(text),
              case .bool(let oomKilled)? = value["oomKilled"], let error = string(value["error"]) else { return nil }
        return .some(Exit(statusCode: statusCode, oomKilled: oomKilled, error: error))
    }
}

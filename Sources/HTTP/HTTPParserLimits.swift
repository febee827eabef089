/// Size limits the parser enforces before buffering anything larger.
public struct HTTPParserLimits: Sendable, Equatable {
    /// Longest request line (method, target, version) → 414.
    public var maxRequestLineBytes: Int = 16 * 1024
    /// Longest single header or trailer field line → 431.
    public var maxFieldLineBytes: Int = 16 * 1024
    /// Largest head: start line plus every field line with its CRLF → 431.
    public var maxHeadBytes: Int = 64 * 1024
    /// Most header fields (and, separately, trailer fields) → 431.
    public var maxFieldCount: Int = 128
    /// Longest chunk-size line including chunk extensions.
    public var maxChunkLineBytes: Int = 4 * 1024
    /// Largest body unless the route sets its own (``HTTPParser/setBodyLimit(_:)``); nil: no limit → 413.
    public var maxBodyBytes: Int? = 16 * 1024 * 1024
    /// Empty lines tolerated before a request line (RFC 9112 §2.2: some
    /// clients send a CRLF after a POST body).
    public var maxLeadingEmptyLines: Int = 4

    public init() {}

    public static let `default` = HTTPParserLimits()
}

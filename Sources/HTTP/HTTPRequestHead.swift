/// The start line and header fields of a request.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: HTTPMethod
    /// The request target as sent (origin form: `/path?query`), undecoded.
    public var target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders

    public init(method: HTTPMethod, target: String, version: HTTPVersion = .http1_1, headers: HTTPHeaders = HTTPHeaders()) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
    }

    /// The path part of the target, still percent-encoded (routes match on
    /// encoded segments so that `%2F` never splits a segment).
    public var rawPath: Substring {
        target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
    }

    /// The query part after `?`, undecoded; nil when there is no `?`.
    public var rawQuery: Substring? {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        return parts.count == 2 ? parts[1] : nil
    }

    /// The decoded query parameters.
    public var query: HTTPQuery { HTTPQuery(rawQuery ?? "") }

    /// Whether the connection may carry another request after this one
    /// (RFC 9112 §9.3): HTTP/1.1 unless `Connection: close`, HTTP/1.0 only
    /// with `Connection: keep-alive`.
    public var keepAlive: Bool {
        if headers.contains(name: "Connection", token: "close") { return false }
        if version == .http1_0 { return headers.contains(name: "Connection", token: "keep-alive") }
        return true
    }

    /// The client asked to be told before it sends the body (RFC 9110 §10.1.1).
    public var expectsContinue: Bool {
        version == .http1_1 && headers.contains(name: "Expect", token: "100-continue")
    }
}

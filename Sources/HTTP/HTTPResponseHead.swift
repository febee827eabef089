/// The status line and header fields of a response.
public struct HTTPResponseHead: Sendable, Equatable {
    public var version: HTTPVersion
    public var status: HTTPStatus
    public var headers: HTTPHeaders

    public init(status: HTTPStatus, version: HTTPVersion = .http1_1, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.version = version
        self.headers = headers
    }

    /// Whether the connection may carry another request after this response.
    public var keepAlive: Bool {
        if headers.contains(name: "Connection", token: "close") { return false }
        if version == .http1_0 { return headers.contains(name: "Connection", token: "keep-alive") }
        return true
    }
}

/// What a handler answers. The server adds Content-Length or
/// Transfer-Encoding, Connection and Date.
public struct HTTPServerResponse: Sendable {
    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: HTTPBody
    /// Set by ``upgrade(to:headers:_:)``: after the 101 head, the connection
    /// is this handler's until it returns, then it is closed.
    public var upgradeHandler: (@Sendable (HTTPUpgradedStream) async -> Void)?

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: HTTPBody = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// `101 Switching Protocols` to `protocolName` (`Upgrade: tcp` as Docker's
    /// attach): once the head is sent, `handler` owns the connection's bytes
    /// in both directions; the server closes it when the handler returns.
    public static func upgrade(to protocolName: String, headers: HTTPHeaders = HTTPHeaders(),
                               _ handler: @escaping @Sendable (HTTPUpgradedStream) async -> Void) -> HTTPServerResponse {
        var headers = headers
        headers.replaceOrAdd(name: "Connection", value: "Upgrade")
        headers.replaceOrAdd(name: "Upgrade", value: protocolName)
        var response = HTTPServerResponse(status: .switchingProtocols, headers: headers)
        response.upgradeHandler = handler
        return response
    }

    /// A plain-text response, e.g. for errors.
    public static func text(_ status: HTTPStatus, _ text: String, headers: HTTPHeaders = HTTPHeaders()) -> HTTPServerResponse {
        var headers = headers
        if !headers.contains(name: "Content-Type") { headers.add(name: "Content-Type", value: "text/plain; charset=utf-8") }
        return HTTPServerResponse(status: status, headers: headers, body: .string(text))
    }
}

/// An error a handler throws that carries the response to send (e.g. the
/// registry's `{"errors":[...]}` bodies). Other errors become 500.
public protocol HTTPResponseError: Error {
    var response: HTTPServerResponse { get }
}

/// What a handler answers. The server adds Content-Length or
/// Transfer-Encoding, Connection and Date.
public struct HTTPServerResponse: Sendable {
    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: HTTPBody

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: HTTPBody = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
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

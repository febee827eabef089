import Net

/// A request as a handler sees it: the head, the route's path parameters,
/// the decoded query, and the body as a stream.
public struct HTTPServerRequest: Sendable {
    public let head: HTTPRequestHead
    /// Values of the route pattern's `<name>` and `<name...>` parts, percent-decoded.
    public let pathParameters: [String: String]
    public let query: HTTPQuery
    /// Read it to receive the body; for `Expect: 100-continue` requests the
    /// first read sends `100 Continue`, so a handler that answers without
    /// reading rejects the upload before a byte of it is sent.
    public let body: HTTPIncomingBody
    public let remoteAddress: SocketAddress?
    /// The client's verified certificate on a mutual-TLS connection.
    public let peerCertificate: Certificate?

    public init(
        head: HTTPRequestHead,
        pathParameters: [String: String] = [:],
        body: HTTPIncomingBody = .bytes([]),
        remoteAddress: SocketAddress? = nil,
        peerCertificate: Certificate? = nil
    ) {
        self.head = head
        self.pathParameters = pathParameters
        self.query = head.query
        self.body = body
        self.remoteAddress = remoteAddress
        self.peerCertificate = peerCertificate
    }

    public var method: HTTPMethod { head.method }
    public var headers: HTTPHeaders { head.headers }
    /// The path, percent-decoded (nil if its escapes are malformed).
    public var path: String? { PercentEncoding.decode(head.rawPath) }
}

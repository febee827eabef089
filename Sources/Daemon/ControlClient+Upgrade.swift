import Foundation
import HTTP

extension ControlClient {
    /// Sends a request that upgrades to the attach protocol
    /// (``ContainerStreamFrame``s) and returns the stream with the 101's
    /// headers; any other answer is thrown as its ``APIError``.
    public func upgrade(_ method: HTTPMethod, _ target: String, json body: (any Encodable)? = nil) async throws -> (HTTPHeaders, HTTPUpgradedStream) {
        var headers = HTTPHeaders()
        var payload: HTTPBody = .empty
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            payload = .bytes(Support.encode(body))
        }
        let request = HTTPClientRequest(method: method, url: base.with(target: target), headers: headers, body: payload)
        switch try await client.upgrade(request, to: ControlAPI.attachProtocol) {
        case .switched(let head, let stream):
            return (head.headers, stream)
        case .refused(let head, let bytes):
            throw Response(status: head.status.code, headers: head.headers, body: bytes).error
                ?? APIError(status: head.status.code, code: "upgrade_refused", message: "the daemon answered \(head.status) instead of switching to a stream",
                            hint: "is the daemon as new as this client?")
        }
    }
}

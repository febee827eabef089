import Foundation
import HTTP
import Net

/// A client of the control API, for the CLI and tests: over the daemon's
/// Unix socket (`unix:///run/shoal/shoal.sock`) or over mutual TLS to a
/// manager (`https://IP:4243`, with a client certificate directory holding
/// `client.crt`, `client.key` and `ca.crt` from `shoal ca issue-client`).
public final class ControlClient: Sendable {
    public let host: String
    let base: HTTPURL
    let client: HTTPClient

    /// A response: status, headers, whole body.
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: [UInt8]

        public var text: String { String(decoding: body, as: UTF8.self) }
        public var isStale: Bool { headers[ControlAPI.staleHeader] == "true" }

        /// The API error this response carries (nil for 2xx).
        public var error: APIError? {
            guard !(200..<300).contains(status) else { return nil }
            if let body = try? JSONDecoder().decode(APIError.Body.self, from: Data(body)) {
                return APIError(status: status, code: body.code, message: body.message, hint: body.hint)
            }
            return APIError(status: status, code: "http_\(status)", message: text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    public init(host: String, tlsDirectory: String? = nil, timeout: Duration = .seconds(60)) throws {
        self.host = host
        var configuration = HTTPClient.Configuration()
        configuration.responseTimeout = timeout
        if host.hasPrefix("unix://") {
            let path = String(host.dropFirst("unix://".count))
            base = HTTPURL(address: .unix(path: path))
        } else if host.hasPrefix("/") {
            base = HTTPURL(address: .unix(path: host))
        } else if host.hasPrefix("https://") {
            base = try HTTPURL(host)
            guard let tlsDirectory else {
                throw APIError(status: 400, code: "invalid_argument", message: "--host \(host) needs a client certificate", hint: "pass --tls-dir DIR (from `shoal ca issue-client --out DIR`)")
            }
            let certificate = try Certificate.read(fromFile: tlsDirectory + "/client.crt")
            let key = try PrivateKey.read(fromFile: tlsDirectory + "/client.key")
            let root = try Certificate.read(fromFile: tlsDirectory + "/ca.crt")
            configuration.tls = try TLSContext(.node(certificate: certificate, key: key, root: root), side: .client)
        } else {
            throw APIError(status: 400, code: "invalid_argument", message: "--host '\(host)' is neither unix:///path nor https://IP:PORT",
                           hint: "for example unix:///run/shoal/shoal.sock")
        }
        client = HTTPClient(configuration: configuration)
    }

    /// Sends one request and reads the whole answer.
    public func send(_ method: HTTPMethod, _ target: String, json body: (any Encodable)? = nil, rawBody: [UInt8]? = nil) async throws -> Response {
        let response = try await client.execute(request(method, target, json: body, rawBody: rawBody))
        let bytes = try await response.body.collect(upTo: 256 << 20)
        return Response(status: response.status.code, headers: response.headers, body: bytes)
    }

    private func request(_ method: HTTPMethod, _ target: String, json body: (any Encodable)?, rawBody: [UInt8]? = nil) -> HTTPClientRequest {
        var headers = HTTPHeaders()
        var payload: HTTPBody = .empty
        if let rawBody {
            headers.add(name: "Content-Type", value: "application/json")
            payload = .bytes(rawBody)
        } else if let body {
            headers.add(name: "Content-Type", value: "application/json")
            payload = .bytes(Support.encode(body))
        }
        return HTTPClientRequest(method: method, url: base.with(target: target), headers: headers, body: payload)
    }

    /// Sends one request; decodes a 2xx answer as `T`, throws the ``APIError`` otherwise.
    public func call<T: Decodable>(_ method: HTTPMethod, _ target: String, json body: (any Encodable)? = nil, as type: T.Type = T.self) async throws -> T {
        let response = try await send(method, target, json: body)
        if let error = response.error { throw error }
        return try JSONDecoder().decode(T.self, from: Data(response.body))
    }

    /// Sends one request whose answer has no body worth decoding.
    public func perform(_ method: HTTPMethod, _ target: String, json body: (any Encodable)? = nil) async throws {
        let response = try await send(method, target, json: body)
        if let error = response.error { throw error }
    }

    /// Streams the lines of a chunked answer (`/v1/events`, container logs
    /// and waits), skipping blank keep-alive lines.
    public func lines(_ target: String, method: HTTPMethod = .get) async throws -> AsyncThrowingStream<String, any Error> {
        try await streamLines(method, target).lines
    }

    /// ``lines(_:method:)`` of a request with a JSON body, with the answer's
    /// headers (`POST /v1/containers/run` names the container in one).
    public func streamLines(_ method: HTTPMethod, _ target: String, json body: (any Encodable)? = nil) async throws
        -> (headers: HTTPHeaders, lines: AsyncThrowingStream<String, any Error>) {
        let response = try await client.execute(request(method, target, json: body))
        if !(200..<300).contains(response.status.code) {
            let bytes = try await response.body.collect(upTo: 1 << 20)
            throw Response(status: response.status.code, headers: response.headers, body: bytes).error!
        }
        return (response.headers, AsyncThrowingStream { continuation in
            let task = Task {
                var buffer: [UInt8] = []
                do {
                    for try await chunk in response.body {
                        buffer += chunk
                        for line in Self.takeLines(from: &buffer) { continuation.yield(line) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        })
    }

    /// The complete non-empty lines at the start of `buffer`, taken out of
    /// it; a partial last line stays for the next chunk.
    static func takeLines(from buffer: inout [UInt8]) -> [String] {
        var lines: [String] = []
        while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: buffer[..<newline], as: UTF8.self)
            buffer.removeSubrange(...newline)
            if !line.isEmpty { lines.append(line) }
        }
        return lines
    }

    /// Streams a binary answer (a container export) into `descriptor`,
    /// which the caller owns; returns the bytes written.
    @discardableResult
    public func download(_ target: String, to descriptor: Int32) async throws -> Int {
        let response = try await client.execute(HTTPClientRequest(method: .get, url: base.with(target: target)))
        if !(200..<300).contains(response.status.code) {
            let bytes = try await response.body.collect(upTo: 1 << 20)
            throw Response(status: response.status.code, headers: response.headers, body: bytes).error!
        }
        return try await Self.write(response.body, to: descriptor)
    }

    public func shutdown() async {
        await client.shutdown()
    }
}

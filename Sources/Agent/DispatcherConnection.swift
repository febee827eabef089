import ClusterState
import Foundation
import Net
import RPC

/// The agent's line to a dispatcher. The real one is RPC over mutual TLS;
/// tests may plug in one that calls a dispatcher in the same process.
public protocol DispatcherConnection: Sendable {
    func openSession(_ request: SessionRequest) -> AsyncThrowingStream<AssignmentBatch, any Error>
    func heartbeat(_ request: HeartbeatRequest) async throws -> HeartbeatReply
    func report(_ batch: StatusBatch) async throws
    /// Sends lines of a requested log; false: the manager no longer wants them.
    func sendLogs(_ chunk: TaskLogChunk) async throws -> Bool
    func close() async
}

/// Makes connections, trying the known managers in turn.
public protocol DispatcherConnector: Sendable {
    func connect() async throws -> any DispatcherConnection
}

/// Dials managers over mutual TLS with this node's certificate. Any manager
/// serves sessions (a follower forwards its writes to the leader); the next
/// attempt after a failure starts at the next address.
public final class RPCDispatcherConnector: DispatcherConnector, @unchecked Sendable {
    public static let connectTimeout: Duration = .seconds(2)
    private let addresses: @Sendable () -> [String]
    private let context: @Sendable () -> TLSContext?
    private let lock = NSLock()
    private var next = 0

    public init(addresses: @escaping @Sendable () -> [String], context: @escaping @Sendable () -> TLSContext?) {
        self.addresses = addresses
        self.context = context
    }

    public func connect() async throws -> any DispatcherConnection {
        let all = addresses()
        guard !all.isEmpty else { throw DispatcherError(code: "unavailable", message: "no manager address is known") }
        guard let context = context() else { throw DispatcherError(code: "unavailable", message: "this node has no credentials") }
        let start = lock.withLock { () -> Int in
            defer { next += 1 }
            return next
        }
        var lastError: any Error = DispatcherError(code: "unavailable", message: "no manager answered")
        for offset in 0..<all.count {
            let address = all[(start + offset) % all.count]
            do {
                let socketAddress = try Self.parse(address)
                let connection = try await TLSConnection.connect(to: socketAddress, context: context, deadline: .now + Self.connectTimeout)
                return RPCDispatcherConnection(client: RPCClient(connection: connection), address: address)
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    static func parse(_ text: String) throws -> SocketAddress {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw DispatcherError(code: "invalid_argument", message: "manager address '\(text)' is not HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            return .ipv6(host, port: port)
        }
        return .ipv4(host, port: port)
    }
}

final class RPCDispatcherConnection: DispatcherConnection, @unchecked Sendable {
    static let callTimeout: Duration = .seconds(10)
    let client: RPCClient
    let address: String

    init(client: RPCClient, address: String) {
        self.client = client
        self.address = address
    }

    func openSession(_ request: SessionRequest) -> AsyncThrowingStream<AssignmentBatch, any Error> {
        let raw = client.stream(method: DispatcherMethods.session, payload: WireJSON.encode(request))
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await payload in raw {
                        let reply = try WireJSON.decode(DispatcherReply<AssignmentBatch>.self, from: payload)
                        if let error = reply.error { throw error }
                        if let value = reply.value { continuation.yield(value) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    func heartbeat(_ request: HeartbeatRequest) async throws -> HeartbeatReply {
        try await call(DispatcherMethods.heartbeat, request)
    }

    func report(_ batch: StatusBatch) async throws {
        let _: DispatcherEmpty = try await call(DispatcherMethods.status, batch)
    }

    func sendLogs(_ chunk: TaskLogChunk) async throws -> Bool {
        let reply: TaskLogChunkReply = try await call(DispatcherMethods.logs, chunk)
        return reply.keepSending
    }

    private func call<Request: Encodable, Value: Codable & Sendable>(_ method: String, _ request: Request) async throws -> Value {
        let bytes = try await client.call(method: method, payload: WireJSON.encode(request), deadline: .now + Self.callTimeout)
        let reply = try WireJSON.decode(DispatcherReply<Value>.self, from: bytes)
        if let error = reply.error { throw error }
        guard let value = reply.value else { throw DispatcherError(code: "internal", message: "\(method) answered neither a value nor an error") }
        return value
    }

    func close() async {
        await client.close()
    }
}

/// JSON for dispatcher messages (as the other manager RPC methods).
public enum WireJSON {
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        Array(try! JSONEncoder().encode(value))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}

import Foundation
import Net
import RPC

/// Calls JSON methods on managers over mutual TLS with this node's
/// certificate, keeping one connection per manager address.
final class PeerCaller: @unchecked Sendable {
    static let connectTimeout: Duration = .seconds(2)

    private let context: @Sendable () -> TLSContext
    private let lock = NSLock()
    private var clients: [String: RPCClient] = [:]

    init(context: @escaping @Sendable () -> TLSContext) {
        self.context = context
    }

    /// Calls `method` on the manager at `address` (`IP:PORT`); throws the
    /// manager's ``APIError``, or an `RPCError`/`TLSError` when it cannot be
    /// reached.
    func call<Request: Encodable, Value: Codable & Sendable>(
        _ address: String, _ method: String, _ request: Request, timeout: Duration, as type: Value.Type = Value.self
    ) async throws -> Value {
        let client = try await client(for: address)
        let bytes: [UInt8]
        do {
            bytes = try await client.call(method: method, payload: Support.encode(request), deadline: .now + timeout)
        } catch let error as RPCError where error.code == .unavailable || error.code == .protocolViolation {
            drop(address, client)
            throw error
        }
        let reply = try Support.decode(RPCReply<Value>.self, from: bytes)
        if let error = reply.error { throw error }
        guard let value = reply.value else {
            throw APIError(status: 500, code: "internal", message: "\(method) answered neither a value nor an error", hint: "run the same shoal version on every node")
        }
        return value
    }

    /// Opens a server stream of `method` on the manager at `address`; the
    /// caller decodes each message.
    func stream<Request: Encodable>(_ address: String, _ method: String, _ request: Request) async throws -> AsyncThrowingStream<[UInt8], any Error> {
        let client = try await client(for: address)
        return client.stream(method: method, payload: Support.encode(request))
    }

    /// Tries `addresses` in order until one answers (an ``APIError`` answer counts).
    func callAny<Request: Encodable, Value: Codable & Sendable>(
        _ addresses: [String], _ method: String, _ request: Request, timeout: Duration, as type: Value.Type = Value.self
    ) async throws -> Value {
        var lastError: any Error = APIError(status: 503, code: "unavailable", message: "no manager address is known", hint: "join the cluster again")
        for address in addresses {
            do {
                return try await call(address, method, request, timeout: timeout, as: type)
            } catch let error as APIError {
                throw error
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private func client(for address: String) async throws -> RPCClient {
        if let existing = lock.withLock({ clients[address] }), existing.isOpen { return existing }
        let socketAddress = try Support.parseAddress(address, defaultPort: 4242, field: "manager address")
        let connection = try await TLSConnection.connect(to: socketAddress, context: context(), deadline: .now + Self.connectTimeout)
        let client = RPCClient(connection: connection)
        // Two first calls to one address race to connect: the one that comes
        // second uses the connection already installed and closes its own
        // (closing the installed one would fail the other call under way).
        let (chosen, unused): (RPCClient, RPCClient?) = lock.withLock {
            if let installed = clients[address], installed.isOpen { return (installed, client) }
            defer { clients[address] = client }
            return (client, clients[address])
        }
        if let unused { await unused.close() }
        return chosen
    }

    private func drop(_ address: String, _ client: RPCClient) {
        lock.withLock {
            if clients[address] === client { clients[address] = nil }
        }
        Task { await client.close() }
    }

    func closeAll() async {
        let all = lock.withLock {
            defer { clients.removeAll() }
            return Array(clients.values)
        }
        for client in all { await client.close() }
    }
}

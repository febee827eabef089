import Net

/// A connection after `101 Switching Protocols`: the raw bytes of the new
/// protocol in both directions, starting with whatever the HTTP parser had
/// already buffered past the head. One reader and one writer at a time
/// (they may run concurrently).
public final class HTTPUpgradedStream: @unchecked Sendable {
    public let transport: any HTTPTransport
    private var leftover: [UInt8]

    init(transport: any HTTPTransport, leftover: [UInt8]) {
        self.transport = transport
        self.leftover = leftover
    }

    /// Up to `maxBytes`; `[]` once the peer closed its sending side.
    public func read(maxBytes: Int = 64 * 1024, deadline: ContinuousClock.Instant? = nil) async throws -> [UInt8] {
        if !leftover.isEmpty {
            let count = min(maxBytes, leftover.count)
            defer { leftover.removeFirst(count) }
            return Array(leftover.prefix(count))
        }
        return try await transport.read(maxBytes: maxBytes, deadline: deadline)
    }

    public func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant? = nil) async throws {
        try await transport.write(bytes, deadline: deadline)
    }

    /// Ends our sending side; reading goes on (plain sockets; over TLS the
    /// whole connection closes, as TLS 1.3 close_notify does in practice).
    public func shutdownWrite(deadline: ContinuousClock.Instant? = nil) async throws {
        if let connection = transport as? Connection {
            try await connection.shutdownWrite(deadline: deadline)
        } else {
            try await transport.close(deadline: deadline)
        }
    }

    public func close(deadline: ContinuousClock.Instant? = nil) async throws {
        try await transport.close(deadline: deadline)
    }

    public func abort() {
        transport.abort()
    }
}

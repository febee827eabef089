import Foundation
import Testing
@testable import Net

/// A loopback echo server for tests: accepts until closed, echoes each
/// connection until the peer's end of stream, then closes gracefully.
final class EchoServer: Sendable {
    let listener: TCPListener
    private let acceptLoop: Task<Void, Never>

    init(_ address: SocketAddress) throws {
        let listener = try TCPListener.bind(address)
        self.listener = listener
        acceptLoop = Task {
            while true {
                guard let connection = try? await listener.accept() else { return }
                Task {
                    do {
                        while true {
                            let bytes = try await connection.read()
                            if bytes.isEmpty { break }
                            try await connection.write(bytes)
                        }
                        try await connection.close()
                    } catch {
                        connection.abort()
                    }
                }
            }
        }
    }

    var address: SocketAddress { listener.localAddress }

    func stop() async {
        listener.close()
        await acceptLoop.value
    }
}

/// Reads exactly `count` bytes or fails at end of stream.
func readExactly(_ connection: Connection, _ count: Int, deadline: ContinuousClock.Instant? = nil) async throws -> [UInt8] {
    var result: [UInt8] = []
    while result.count < count {
        let chunk = try await connection.read(maxBytes: count - result.count, deadline: deadline)
        if chunk.isEmpty { break }
        result += chunk
    }
    return result
}

func temporaryDirectory() throws -> String {
    var template = Array("/tmp/shoal-net-XXXXXX".utf8CString)
    guard let path = mkdtemp(&template) else {
        throw SystemError(call: "mkdtemp", errno: errno, path: "/tmp")
    }
    return String(cString: path)
}

func ipv6LoopbackAvailable() -> Bool {
    (try? TCPListener.bind(.loopbackIPv6()))?.close() != nil
}

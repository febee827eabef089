import struct Raft.SeededGenerator
import Foundation
import Net
import RPC
import Testing

/// Bytes that are not RPC from an authenticated peer: the server says why
/// (a goAway frame), closes that connection, and keeps serving the others.
@Suite("Malformed frames", .timeLimit(.minutes(2)))
struct RPCMalformedFrameTests {
    /// Sends `garbage` on a raw TLS connection and returns everything the
    /// server sent back before closing.
    private func sendRaw(_ garbage: [UInt8], to address: SocketAddress, context: TLSContext, timeout: Duration = .seconds(10)) async throws -> [UInt8] {
        let raw = try await TLSConnection.connect(to: address, context: context, deadline: .now + .seconds(10))
        try await raw.write(garbage)
        var received: [UInt8] = []
        while true {
            let chunk = try await raw.read(deadline: .now + timeout)
            if chunk.isEmpty { break }
            received += chunk
        }
        raw.abort()
        return received
    }

    private func frame(_ payload: [UInt8]) -> [UInt8] {
        let length = UInt32(payload.count)
        return [UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)] + payload
    }

    @Test func malformedAndOversizedFramesCloseOnlyTheirConnection() async throws {
        let cluster = try TestCluster()
        let serverContext = try cluster.context(nodeID: "manager-1", role: .manager, side: .server)
        let clientContext = try cluster.context(nodeID: "worker-1", role: .worker, side: .client)
        let rpc = RPCServer(maxFrameBytes: 64 * 1024)
        rpc.register("echo", access: .anyNode) { $0.payload }
        let server = try TestServer(rpc, context: { serverContext })
        let good = try await connect(server.address, clientContext)
        #expect(try await good.call(method: "echo", payload: [1]) == [1])

        let cases: [(name: String, bytes: [UInt8], expect: String)] = [
            ("unknown version", frame([9, 3, 1, 1, 1]), "format version 9"),
            ("unknown kind", frame([1, 2, 77, 1]), "unknown Kind tag 77"),
            ("truncated body", frame([1, 20, 1, 5]), "truncated"),
            ("trailing bytes", frame([1, 2, 4, 1, 0xaa]), "unexpected bytes"),
            ("response kind from a client", frame([1, 3, 2, 1, 0]), "only servers send"),
            ("declared length over the limit", [0x7f, 0xff, 0xff, 0xff], "more than maxFrameBytes 65536"),
            ("method name of 300 bytes", frame([1, 0xb4, 0x02, 1, 1, 0xac, 0x02] + [UInt8](repeating: 0x61, count: 300) + [1, 0, 0, 0]), "method name"),
        ]
        for (index, item) in cases.enumerated() {
            let answer = try await sendRaw(item.bytes, to: server.address, context: clientContext)
            #expect(text(answer).contains("malformed frame") || text(answer).contains("only servers send"),
                    "\(item.name): the server's goodbye does not say why: \(text(answer))")
            let endings = await server.endings.wait(for: index + 1)
            #expect(endings.count == index + 1, "\(item.name): the connection was not closed")
            if let ending = endings.last {
                #expect(ending.hasPrefix("protocol violation"), "\(item.name): \(ending)")
                #expect(ending.contains(item.expect), "\(item.name): \(ending)")
            }
            // The server keeps serving the well-behaved connection.
            #expect(try await good.call(method: "echo", payload: [UInt8(index)]) == [UInt8(index)])
        }

        // Fuzz, bounded: random frames never crash the server.
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<40 {
            let length = Int.random(in: 0..<40, using: &generator)
            let body = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? await sendRaw(frame([1, UInt8(length)] + body), to: server.address, context: clientContext, timeout: .milliseconds(200))
        }
        #expect(try await good.call(method: "echo", payload: [42]) == [42])
        await good.close()
        await server.stop()
    }
}

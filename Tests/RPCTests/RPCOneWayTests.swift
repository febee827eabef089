import Foundation
import Net
import Testing
import Wire
@testable import RPC

/// One-way messages: one frame each, no answer, handled in order with calls;
/// a message the server cannot take closes the connection saying why.
@Suite("RPC one-way messages", .timeLimit(.minutes(2)))
struct RPCOneWayTests {
    let cluster: TestCluster
    let serverContext: TLSContext
    let managerContext: TLSContext
    let workerContext: TLSContext

    init() throws {
        cluster = try TestCluster()
        serverContext = try cluster.context(nodeID: "manager-1", role: .manager, side: .server)
        managerContext = try cluster.context(nodeID: "manager-2", role: .manager, side: .client)
        workerContext = try cluster.context(nodeID: "worker-1", role: .worker, side: .client)
    }

    private final class Seen: @unchecked Sendable {
        let lock = NSLock()
        var values: [Int] = []
        var callers: [String] = []
    }

    private func start(_ configure: (RPCServer) -> Void) throws -> TestServer {
        let server = RPCServer()
        configure(server)
        let context = serverContext
        return try TestServer(server, context: { context })
    }

    /// Waits for the client's close reason, at most 10 s.
    private func closeReason(of client: RPCClient) async -> RPCError? {
        let reasons = Recorder<RPCError>()
        client.whenClosed { reason in Task { await reasons.add(reason) } }
        return await reasons.wait(for: 1).first
    }

    @Test func oneWayMessagesAreHandledInOrderWithTheCallsAroundThem() async throws {
        let seen = Seen()
        let server = try start { server in
            server.registerOneWay("note", access: .managers) { request in
                seen.lock.withLock {
                    seen.values.append(Int(text(request.payload))!)
                    seen.callers.append(request.caller?.nodeID ?? "?")
                }
            }
            server.registerInline("count", access: .managers) { _ in bytes(String(seen.lock.withLock { seen.values.count })) }
        }
        let client = try await connect(server.address, managerContext)
        for value in 0..<200 {
            #expect(try client.sendOneWay(method: "note", payload: bytes(String(value))))
        }
        // Handled inline before the next frame is read: the call after them sees all 200.
        #expect(text(try await client.call(method: "count", payload: [])) == "200")
        #expect(seen.lock.withLock { seen.values } == Array(0..<200))
        #expect(seen.lock.withLock { Set(seen.callers) } == ["manager-2"])
        #expect(client.isOpen)
        await client.close()
        await server.stop()
    }

    @Test func aOneWayMessageGetsNoAnswerFrame() async throws {
        let server = try start { server in
            server.registerOneWay("note", access: .anyNode) { _ in }
            server.register("echo", access: .anyNode) { $0.payload }
        }
        let raw = try await TLSConnection.connect(to: server.address, context: workerContext, deadline: .now + .seconds(10))
        let encoder = FrameEncoder()
        var stream: [UInt8] = []
        try encoder.append(RPCFrame(callID: 0, .oneWay(method: "note", payload: [1])).wireEncoded(), to: &stream)
        try encoder.append(RPCFrame(callID: 7, .request(method: "echo", mode: .unary, deadlineMilliseconds: 0, windowMessages: 0, payload: [2])).wireEncoded(), to: &stream)
        try await raw.write(stream)
        var decoder = FrameDecoder(maxFrameBytes: RPCLimits.defaultMaxFrameBytes)
        var frames: [RPCFrame] = []
        while frames.isEmpty {
            let chunk = try await raw.read(deadline: .now + .seconds(10))
            #expect(!chunk.isEmpty, "the server closed the connection")
            if chunk.isEmpty { break }
            try decoder.feed(chunk[...]) { frames.append(try! RPCFrame(wireBytes: $0)) }
        }
        // The first frame back answers the call: nothing was sent for the one-way message.
        #expect(frames.first == RPCFrame(callID: 7, .message(payload: [2])))
        raw.abort()
        await server.stop()
    }

    @Test func aOneWayMessageTheServerCannotTakeClosesTheConnectionSayingWhy() async throws {
        let server = try start { server in
            server.registerOneWay("raft.note", access: .managers) { request in
                if request.payload == [13] { throw RPCError(.invalidArgument, message: "thirteen is malformed", hint: "send another number") }
            }
            server.register("echo", access: .anyNode) { $0.payload }
        }
        let cases: [(name: String, context: TLSContext, method: String, payload: [UInt8], code: RPCStatusCode, says: String)] = [
            ("unknown method", managerContext, "no.such", [1], .unimplemented, "no one-way method no.such"),
            ("a unary method", managerContext, "echo", [1], .failedPrecondition, "takes calls"),
            ("a refused role", workerContext, "raft.note", [1], .permissionDenied, "worker worker-1 may not call raft.note"),
            ("a handler error", managerContext, "raft.note", [13], .invalidArgument, "thirteen is malformed"),
        ]
        for item in cases {
            let client = try await connect(server.address, item.context)
            #expect(try client.sendOneWay(method: item.method, payload: item.payload), "\(item.name)")
            let reason = await closeReason(of: client)
            #expect(reason?.code == item.code, "\(item.name): \(String(describing: reason))")
            #expect(reason?.message.contains(item.says) == true, "\(item.name): \(String(describing: reason))")
            #expect(!client.isOpen, "\(item.name)")
            await client.close()
        }
        // A one-way method called as a call is refused, and the connection stays.
        let client = try await connect(server.address, managerContext)
        await #expect { _ = try await client.call(method: "raft.note", payload: [1]) } throws: { ($0 as? RPCError)?.code == .failedPrecondition }
        #expect(try await client.call(method: "echo", payload: [5]) == [5])
        await client.close()
        await server.stop()
    }

    @Test func oneWayFramesAreFormatVersionTwoSoOlderNodesRefuseThemByName() throws {
        let oneWay = RPCFrame(callID: 0, .oneWay(method: "shoal.raft.messages", payload: [1, 2]))
        let request = RPCFrame(callID: 3, .request(method: "m", mode: .unary, deadlineMilliseconds: 0, windowMessages: 0, payload: []))
        #expect(oneWay.wireEncoded().first == 2)
        #expect(request.wireEncoded().first == 1, "frames older nodes know keep version 1")
        #expect(try RPCFrame(wireBytes: oneWay.wireEncoded()) == oneWay)
        // A node that reads version 1 only refuses the frame with an error that says to upgrade.
        var olderReader = WireReader(oneWay.wireEncoded())
        #expect(throws: WireError.self) { _ = try olderReader.readMessage(VersionOneEnvelope.self) }
        do {
            var reader = WireReader(oneWay.wireEncoded())
            _ = try reader.readMessage(VersionOneEnvelope.self)
        } catch {
            #expect("\(error)".contains("format version 2, but this node reads versions 1...1; upgrade this node"))
        }
        // A oneWay kind inside a version-1 frame is malformed.
        var forged = oneWay.wireEncoded()
        forged[0] = 1
        #expect(throws: WireError.self) { _ = try RPCFrame(wireBytes: forged) }
    }

    @Test func sendingOnAClosedClientThrows() async throws {
        let server = try start { server in server.registerOneWay("note", access: .anyNode) { _ in } }
        let client = try await connect(server.address, managerContext)
        await client.close()
        #expect(throws: RPCError.self) { _ = try client.sendOneWay(method: "note", payload: []) }
        #expect(await closeReason(of: client)?.code == .unavailable)
        await server.stop()
    }
}

/// The RPC envelope as a node before one-way messages read it: version 1 only.
private struct VersionOneEnvelope: WireCodable {
    static var wireVersion: UInt8 { 1 }
    func encode(to writer: inout WireWriter) {}
    init(from reader: inout WireReader) throws(WireError) {}
}

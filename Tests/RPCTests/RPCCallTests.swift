import Foundation
import Net
import RPC
import Testing
import Wire

/// Unary calls, streams, deadlines and cancellation over real mutual TLS on 127.0.0.1.
@Suite("RPC calls over mutual TLS", .timeLimit(.minutes(2)))
struct RPCCallTests {
    let cluster: TestCluster
    let serverContext: TLSContext
    let workerContext: TLSContext

    init() throws {
        cluster = try TestCluster()
        serverContext = try cluster.context(nodeID: "manager-1", role: .manager, side: .server)
        workerContext = try cluster.context(nodeID: "worker-1", role: .worker, side: .client)
    }

    private func start(_ configure: (RPCServer) -> Void) throws -> TestServer {
        let server = RPCServer()
        configure(server)
        let context = serverContext
        return try TestServer(server, context: { context })
    }

    @Test func unaryRoundTripSeesTheCallersIdentity() async throws {
        let server = try start { server in
            server.register("echo", access: .anyNode) { request in
                bytes("\(request.caller?.description ?? "nobody"): ") + request.payload
            }
        }
        let client = try await connect(server.address, workerContext)
        let answer = try await client.call(method: "echo", payload: bytes("hello"), deadline: .now + .seconds(5))
        #expect(text(answer) == "worker worker-1 of cluster rpc-cluster: hello")
        let empty = try await client.call(method: "echo", payload: [])
        #expect(text(empty) == "worker worker-1 of cluster rpc-cluster: ")
        await client.close()
        await server.stop()
    }

    @Test func pipelinedCallsToAnInlineMethodAreHandledInTheOrderTheyWereStarted() async throws {
        final class Seen: @unchecked Sendable {
            let lock = NSLock()
            var order: [Int] = []
            var answers: [Int: String] = [:]
        }
        let seen = Seen()
        let server = try start { server in
            server.registerInline("append", access: .anyNode) { request in
                let value = Int(text(request.payload))!
                if value == 13 { throw RPCError(.invalidArgument, message: "thirteen is refused", hint: "send another number") }
                seen.lock.withLock { seen.order.append(value) }
                return bytes("ok \(value)")
            }
        }
        let client = try await connect(server.address, workerContext)
        let done = AsyncStream<Void>.makeStream()
        for value in 0..<100 {
            try await client.start(method: "append", payload: bytes(String(value)), deadline: .now + .seconds(10)) { result in
                let answer: String
                switch result {
                case .success(let payload): answer = text(payload)
                case .failure(let error): answer = "\((error as? RPCError)?.code ?? .unknown)"
                }
                let finished = seen.lock.withLock { () -> Bool in
                    seen.answers[value] = answer
                    return seen.answers.count == 100
                }
                if finished { done.continuation.finish() }
            }
        }
        for await _ in done.stream {}
        #expect(seen.order == (0..<100).filter { $0 != 13 })
        #expect(seen.answers[7] == "ok 7")
        #expect(seen.answers[13] == "\(RPCStatusCode.invalidArgument)")
        // Inline methods are unary: called as a stream they are refused.
        await #expect(throws: RPCError.self) {
            for try await _ in client.stream(method: "append", payload: bytes("1")) {}
        }
        await client.close()
        await server.stop()
    }

    @Test func twoHundredConcurrentCallsCompleteOutOfOrderWithTheirOwnAnswers() async throws {
        let server = try start { server in
            server.register("slowSquare", access: .anyNode) { request in
                let value = Int(text(request.payload))!
                // Later calls answer sooner: answers must come back out of order.
                try await Task.sleep(for: .milliseconds((200 - value) / 4))
                return bytes(String(value * value))
            }
        }
        let client = try await connect(server.address, workerContext)
        let completions = Recorder<Int>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for value in 0..<200 {
                group.addTask {
                    let answer = try await client.call(method: "slowSquare", payload: bytes(String(value)), deadline: .now + .seconds(30))
                    #expect(text(answer) == String(value * value), "call \(value) got another call's answer")
                    await completions.add(value)
                }
            }
            try await group.waitForAll()
        }
        let order = await completions.all
        #expect(order.count == 200)
        #expect(Set(order) == Set(0..<200))
        #expect(order != order.sorted(), "answers arrived in the order the calls were made; multiplexing untested")
        // The last calls (shortest sleeps) finish well before the first.
        #expect(order.firstIndex(of: 199)! < order.firstIndex(of: 0)!)
        await client.close()
        await server.stop()
    }

    @Test func serverStreamOfTenThousandMessagesStaysBoundedWithASlowConsumer() async throws {
        let window = 16
        let sent = Recorder<RPCStreamWriter>()
        let server = try start { server in
            server.registerStream("count", access: .anyNode) { request, writer in
                await sent.add(writer)
                for index in 0..<10_000 {
                    try await writer.send(bytes(String(index)))
                }
            }
        }
        let client = RPCClient(connection: try await TLSConnection.connect(to: server.address, context: workerContext, deadline: .now + .seconds(10)),
                               streamWindowMessages: window)
        var received = 0
        var maxAhead = 0
        for try await message in client.stream(method: "count", payload: [], deadline: .now + .seconds(60)) {
            #expect(text(message) == String(received))
            received += 1
            if received % 1000 == 1 {
                // Slow consumer: give the server every chance to run ahead.
                try await Task.sleep(for: .milliseconds(30))
                let writer = await sent.all[0]
                let ahead = writer.sentCount - received
                maxAhead = max(maxAhead, ahead)
                #expect(ahead <= window, "the server ran \(ahead) messages ahead of a consumer with a \(window)-message window")
            }
        }
        #expect(received == 10_000)
        #expect(maxAhead >= window / 2, "the server never filled the window (max \(maxAhead) ahead): the test did not exercise back-pressure")
        await client.close()
        await server.stop()
    }

    @Test func deadlineExceededFailsFastAndCancelsTheHandler() async throws {
        let handlerEnded = Recorder<String>()
        let server = try start { server in
            server.register("sleepy", access: .anyNode) { request in
                do {
                    try await Task.sleep(for: .seconds(20))
                    await handlerEnded.add("finished")
                } catch {
                    await handlerEnded.add("cancelled after \(request.deadline.map { ContinuousClock.now - $0 } ?? .zero) past its deadline")
                    throw error
                }
                return []
            }
        }
        let client = try await connect(server.address, workerContext)
        let started = ContinuousClock.now
        await #expect {
            _ = try await client.call(method: "sleepy", payload: [], deadline: .now + .milliseconds(200))
        } throws: { error in
            (error as? RPCError)?.code == .deadlineExceeded && (error as? RPCError)?.method == "sleepy"
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(2), "deadline of 200 ms reported after \(elapsed)")
        let ended = await handlerEnded.wait(for: 1, timeout: .seconds(5))
        #expect(ended.count == 1 && ended[0].hasPrefix("cancelled"), "handler: \(ended)")
        // The connection is still usable for other calls.
        server.server.register("ping", access: .anyNode) { _ in bytes("pong") }
        #expect(text(try await client.call(method: "ping", payload: [])) == "pong")
        await client.close()
        await server.stop()
    }

    @Test func cancellingTheCallingTaskCancelsTheHandler() async throws {
        let handlerStarted = Recorder<Bool>()
        let handlerEnded = Recorder<String>()
        let server = try start { server in
            server.register("sleepy", access: .anyNode) { _ in
                await handlerStarted.add(true)
                do {
                    try await Task.sleep(for: .seconds(20))
                } catch {
                    await handlerEnded.add("cancelled")
                    throw error
                }
                await handlerEnded.add("finished")
                return []
            }
            server.register("ping", access: .anyNode) { _ in bytes("pong") }
        }
        let client = try await connect(server.address, workerContext)
        let call = Task { try await client.call(method: "sleepy", payload: []) }
        _ = await handlerStarted.wait(for: 1)
        call.cancel()
        let result = await call.result
        switch result {
        case .success: Issue.record("a cancelled call returned normally")
        case .failure(let error): #expect((error as? RPCError)?.code == .cancelled, "\(error)")
        }
        #expect(await handlerEnded.wait(for: 1, timeout: .seconds(5)) == ["cancelled"])
        #expect(text(try await client.call(method: "ping", payload: [])) == "pong")
        await client.close()
        await server.stop()
    }

    @Test func droppingAStreamEarlyCancelsItOnTheServer() async throws {
        let handlerEnded = Recorder<String>()
        let server = try start { server in
            server.registerStream("forever", access: .anyNode) { _, writer in
                do {
                    while true { try await writer.send([1]) }
                } catch {
                    await handlerEnded.add("stopped: \(type(of: error))")
                    throw error
                }
            }
        }
        let client = try await connect(server.address, workerContext)
        do {
            var seen = 0
            for try await _ in client.stream(method: "forever", payload: []) {
                seen += 1
                if seen == 100 { break }
            }
        }
        let ended = await handlerEnded.wait(for: 1, timeout: .seconds(5))
        #expect(ended == ["stopped: CancellationError"])
        await client.close()
        await server.stop()
    }

    @Test func streamEndsWithTheHandlersError() async throws {
        let server = try start { server in
            server.registerStream("failing", access: .anyNode) { _, writer in
                try await writer.send(bytes("one"))
                try await writer.send(bytes("two"))
                throw RPCError(.notFound, message: "task t-9 is gone", hint: "list tasks again")
            }
        }
        let client = try await connect(server.address, workerContext)
        var messages: [String] = []
        do {
            for try await message in client.stream(method: "failing", payload: []) { messages.append(text(message)) }
            Issue.record("the stream ended without the handler's error")
        } catch let error as RPCError {
            #expect(error.code == .notFound)
            #expect(error.message == "task t-9 is gone")
            #expect(error.hint == "list tasks again")
        }
        #expect(messages == ["one", "two"], "messages sent before the error are delivered first")
        await client.close()
        await server.stop()
    }

    @Test func streamDeadlineEndsTheStreamAndCancelsTheHandler() async throws {
        let handlerEnded = Recorder<String>()
        let server = try start { server in
            server.registerStream("trickle", access: .anyNode) { _, writer in
                do {
                    while true {
                        try await writer.send([1])
                        try await Task.sleep(for: .milliseconds(50))
                    }
                } catch {
                    await handlerEnded.add("\(type(of: error))")
                    throw error
                }
            }
        }
        let client = try await connect(server.address, workerContext)
        var received = 0
        let started = ContinuousClock.now
        do {
            for try await _ in client.stream(method: "trickle", payload: [], deadline: .now + .milliseconds(300)) { received += 1 }
            Issue.record("the stream outlived its deadline")
        } catch let error as RPCError {
            #expect(error.code == .deadlineExceeded)
        }
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(received >= 1 && received <= 10, "received \(received) messages in 300 ms at one per 50 ms")
        #expect(await handlerEnded.wait(for: 1, timeout: .seconds(5)) == ["CancellationError"])
        await client.close()
        await server.stop()
    }

    @Test func unknownMethodIsATypedError() async throws {
        let server = try start { _ in }
        let client = try await connect(server.address, workerContext)
        do {
            _ = try await client.call(method: "no.such.method", payload: [1, 2, 3])
            Issue.record("an unknown method answered")
        } catch let error as RPCError {
            #expect(error.code == .unimplemented)
            #expect(error.method == "no.such.method")
            #expect(error.message.contains("no.such.method"))
        }
        await client.close()
        await server.stop()
    }

    @Test func handlerErrorsThatAreNotRPCErrorsArriveAsUnknown() async throws {
        struct Broken: Error, CustomStringConvertible { var description: String { "disk on fire" } }
        let server = try start { server in
            server.register("broken", access: .anyNode) { _ in throw Broken() }
        }
        let client = try await connect(server.address, workerContext)
        do {
            _ = try await client.call(method: "broken", payload: [])
            Issue.record("a failing handler answered")
        } catch let error as RPCError {
            #expect(error.code == .unknown)
            #expect(error.message == "disk on fire")
        }
        await client.close()
        await server.stop()
    }

    @Test func workerCertificateCannotCallManagerOnlyMethods() async throws {
        let ran = Recorder<String>()
        let server = try start { server in
            server.register("raft.append", access: .managers) { request in
                await ran.add(request.caller?.nodeID ?? "?")
                return bytes("appended")
            }
        }
        let worker = try await connect(server.address, workerContext)
        do {
            _ = try await worker.call(method: "raft.append", payload: [])
            Issue.record("a worker called a manager-only method")
        } catch let error as RPCError {
            #expect(error.code == .permissionDenied)
            #expect(error.message.contains("raft.append"))
            #expect(error.message.contains("worker worker-1"))
            #expect(error.message.contains("a manager certificate"))
        }
        let manager = try await connect(server.address, cluster.context(nodeID: "manager-2", role: .manager, side: .client))
        #expect(text(try await manager.call(method: "raft.append", payload: [])) == "appended")
        #expect(await ran.all == ["manager-2"], "the handler ran for a refused caller")
        await worker.close()
        await manager.close()
        await server.stop()
    }

    @Test func oversizedPayloadIsRefusedBeforeSending() async throws {
        let server = try start { server in
            server.register("echo", access: .anyNode) { $0.payload }
        }
        let client = RPCClient(connection: try await TLSConnection.connect(to: server.address, context: workerContext, deadline: .now + .seconds(10)),
                               maxFrameBytes: 64 * 1024)
        await #expect {
            _ = try await client.call(method: "echo", payload: [UInt8](repeating: 7, count: 64 * 1024))
        } throws: { ($0 as? RPCError)?.code == .resourceExhausted }
        let big = [UInt8](repeating: 9, count: client.maxPayloadBytes)
        #expect(try await client.call(method: "echo", payload: big) == big)
        await client.close()
        await server.stop()
    }

    @Test func closingTheConnectionFailsCallsInFlightAndLaterCalls() async throws {
        let started = Recorder<Bool>()
        let server = try start { server in
            server.register("sleepy", access: .anyNode) { _ in
                await started.add(true)
                try await Task.sleep(for: .seconds(20))
                return []
            }
        }
        let client = try await connect(server.address, workerContext)
        let inFlight = Task { try await client.call(method: "sleepy", payload: []) }
        _ = await started.wait(for: 1)
        await client.close()
        switch await inFlight.result {
        case .success: Issue.record("a call survived close()")
        case .failure(let error): #expect((error as? RPCError)?.code == .unavailable, "\(error)")
        }
        #expect(!client.isOpen)
        await #expect { _ = try await client.call(method: "sleepy", payload: []) } throws: { ($0 as? RPCError)?.code == .unavailable }
        #expect(await server.endings.wait(for: 1) == ["closed"], "the server should see a clean close")
        await server.stop()
    }

    @Test func plainUnixSocketForLocalUse() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rpc-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = RPCServer()
        server.register("whoami", access: .managers) { request in bytes(request.caller?.nodeID ?? "anonymous") }
        let listener = try TCPListener.bind(.unix(path: directory + "/shoal.sock"))
        let serving = Task {
            let connection = try await listener.accept(deadline: .now + .seconds(10))
            try await server.serve(connection, peer: NodeIdentity(nodeID: "local-root", role: .manager, clusterID: "rpc-cluster"))
        }
        let client = RPCClient(connection: try await Connection.connect(to: listener.localAddress, deadline: .now + .seconds(10)))
        #expect(text(try await client.call(method: "whoami", payload: [])) == "local-root")
        await client.close()
        try await serving.value
        listener.close()
    }
}

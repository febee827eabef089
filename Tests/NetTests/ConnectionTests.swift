import Foundation
import Testing
@testable import Net

@Suite("TCP and Unix connections", .timeLimit(.minutes(2)))
struct ConnectionTests {
    private func echoRoundTrip(_ address: SocketAddress) async throws {
        let server = try EchoServer(address)
        let client = try await Connection.connect(to: server.address, deadline: .now + .seconds(5))
        let message = Array("hello over \(address)".utf8)
        try await client.write(message)
        let answer = try await readExactly(client, message.count, deadline: .now + .seconds(5))
        #expect(answer == message)
        // A larger payload crosses many reads and writes.
        let bulk = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        async let echoed = readExactly(client, bulk.count, deadline: .now + .seconds(20))
        try await client.write(bulk, deadline: .now + .seconds(20))
        #expect(try await echoed == bulk)
        try await client.close(deadline: .now + .seconds(5))
        #expect(!client.isOpen)
        await server.stop()
    }

    @Test func echoOverIPv4() async throws {
        try await echoRoundTrip(.loopbackIPv4())
    }

    @Test(.enabled(if: ipv6LoopbackAvailable(), "::1 is not configured on this host"))
    func echoOverIPv6() async throws {
        try await echoRoundTrip(.loopbackIPv6())
    }

    @Test func echoOverUnixSocket() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/echo.sock"
        try await echoRoundTrip(.unix(path: path))
        #expect(!FileManager.default.fileExists(atPath: path), "closing the listener removes its socket file")
    }

    @Test func connectToClosedPortIsRefused() async throws {
        let listener = try TCPListener.bind(.loopbackIPv4())
        let address = listener.localAddress
        listener.close()
        await #expect {
            _ = try await Connection.connect(to: address, deadline: .now + .seconds(5))
        } throws: { error in
            (error as? SystemError)?.errno == ECONNREFUSED
        }
    }

    @Test func peerCloseReadsAsEndOfStream() async throws {
        let listener = try TCPListener.bind(.loopbackIPv4())
        async let accepted = listener.accept(deadline: .now + .seconds(5))
        let client = try await Connection.connect(to: listener.localAddress)
        let server = try await accepted
        try await server.write(Array("bye".utf8))
        try await server.shutdownWrite()
        #expect(try await readExactly(client, 3) == Array("bye".utf8))
        #expect(try await client.read(deadline: .now + .seconds(5)) == [])
        try await client.close()
        try await server.close(deadline: .now + .seconds(5))
        listener.close()
    }

    @Test func slowReaderMakesFastWriterWaitWithBoundedBuffer() async throws {
        let listener = try TCPListener.bind(.loopbackIPv4())
        let highWater = 64 * 1024
        async let accepted = listener.accept(deadline: .now + .seconds(5))
        let writer = try await Connection.connect(to: listener.localAddress, highWaterMarkBytes: highWater)
        let reader = try await accepted
        let chunk = [UInt8](repeating: 7, count: 16 * 1024)
        let total = 64 * 1024 * 1024
        let progress = Progress()
        let writing = Task {
            var sent = 0
            while sent < total {
                try await writer.write(chunk, deadline: .now + .seconds(60))
                sent += chunk.count
                progress.set(sent)
            }
        }
        // Nobody reads: the kernel buffers fill, then our buffer, then write waits.
        var last = -1
        while true {
            try await Task.sleep(for: .milliseconds(100))
            let now = progress.value
            if now == last { break }
            last = now
        }
        #expect(last < total / 4, "writer should stall long before 64 MiB while nobody reads (sent \(last))")
        #expect(writer.bufferedBytes <= highWater)
        // Now read slowly-but-surely; the writer resumes and finishes.
        var received = 0
        while received < total {
            let bytes = try await reader.read(maxBytes: 256 * 1024, deadline: .now + .seconds(60))
            #expect(!bytes.isEmpty)
            received += bytes.count
        }
        try await writing.value
        #expect(received == total)
        #expect(writer.peakBufferedBytes <= highWater, "send buffer peaked at \(writer.peakBufferedBytes) bytes")
        writer.abort()
        reader.abort()
        listener.close()
    }

    @Test func readTimesOutAndConnectionStaysUsable() async throws {
        let server = try EchoServer(.loopbackIPv4())
        let client = try await Connection.connect(to: server.address)
        let started = ContinuousClock.now
        await #expect {
            _ = try await client.read(deadline: .now + .milliseconds(200))
        } throws: { error in
            if case NetError.timedOut(operation: "read", _) = error { return true }
            return false
        }
        let elapsed = started.duration(to: .now)
        #expect(elapsed >= .milliseconds(200) && elapsed < .seconds(3), "timed out after \(elapsed)")
        try await client.write([1, 2, 3])
        #expect(try await readExactly(client, 3, deadline: .now + .seconds(5)) == [1, 2, 3])
        try await client.close()
        await server.stop()
    }

    @Test func acceptTimesOut() async throws {
        let listener = try TCPListener.bind(.loopbackIPv4())
        await #expect(throws: NetError.self) {
            _ = try await listener.accept(deadline: .now + .milliseconds(100))
        }
        listener.close()
    }

    @Test func cancellingAPendingReadEndsItPromptly() async throws {
        let server = try EchoServer(.loopbackIPv4())
        let client = try await Connection.connect(to: server.address)
        let reading = Task { try await client.read() }
        try await Task.sleep(for: .milliseconds(100))
        let started = ContinuousClock.now
        reading.cancel()
        await #expect(throws: CancellationError.self) { _ = try await reading.value }
        // Generous for a loaded 2-core host: without cancellation support the read would never end.
        #expect(started.duration(to: .now) < .seconds(5))
        // The read consumed nothing: the connection still echoes.
        try await client.write([9])
        #expect(try await readExactly(client, 1, deadline: .now + .seconds(5)) == [9])
        try await client.close()
        await server.stop()
    }

    @Test func cancellingABlockedWriteAbortsTheConnection() async throws {
        let listener = try TCPListener.bind(.loopbackIPv4())
        async let accepted = listener.accept(deadline: .now + .seconds(5))
        let writer = try await Connection.connect(to: listener.localAddress, highWaterMarkBytes: 16 * 1024)
        let reader = try await accepted
        let writing = Task {
            let chunk = [UInt8](repeating: 1, count: 64 * 1024)
            while true { try await writer.write(chunk) }
        }
        try await Task.sleep(for: .milliseconds(300))
        writing.cancel()
        await #expect(throws: CancellationError.self) { try await writing.value }
        #expect(!writer.isOpen)
        // The reader sees the abort as a reset or end of stream, not a hang.
        var sawEnd = false
        do {
            while true {
                if try await reader.read(deadline: .now + .seconds(5)).isEmpty { sawEnd = true; break }
            }
        } catch let error as SystemError {
            sawEnd = error.errno == ECONNRESET
        }
        #expect(sawEnd)
        reader.abort()
        listener.close()
    }

    @Test func closeWhileAnotherTaskReadsEndsThatRead() async throws {
        let server = try EchoServer(.loopbackIPv4())
        let client = try await Connection.connect(to: server.address)
        let reading = Task { try await client.read(deadline: .now + .seconds(30)) }
        try await Task.sleep(for: .milliseconds(100))
        let started = ContinuousClock.now
        try await client.close(deadline: .now + .seconds(5))
        // The reader ends promptly: with NetError.closed, or with end of stream
        // if the server's FIN won the race. Never with data, never hanging.
        let result = await reading.result
        switch result {
        case .success(let bytes): #expect(bytes.isEmpty)
        case .failure(let error): #expect(error is NetError, "unexpected \(error)")
        }
        #expect(started.duration(to: .now) < .seconds(5))
        #expect(!client.isOpen)
        await server.stop()
    }

    @Test func closingTheListenerFailsAPendingAccept() async throws {
        let listener = try TCPListener.bind(.loopbackIPv4())
        let accepting = Task { try await listener.accept() }
        try await Task.sleep(for: .milliseconds(50))
        listener.close()
        await #expect(throws: NetError.self) { _ = try await accepting.value }
    }
}

/// A counter shared between the writer task and the test.
final class Progress: @unchecked Sendable {
    private let lock = NSLock()
    private var current = 0
    var value: Int { lock.withLock { current } }
    func set(_ value: Int) { lock.withLock { current = value } }
}

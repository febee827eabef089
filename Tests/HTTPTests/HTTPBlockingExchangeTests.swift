import Foundation
import Testing
import Net
@testable import HTTP

/// ``HTTPBlockingExchange`` against the project's own server on a Unix
/// socket: the request as sent, a chunked body handed over as it streams,
/// stopping early, and a server that closes before the answer ended.
@Suite struct HTTPBlockingExchangeTests {
    /// The exchange blocks its thread: run it on one of its own, not on the
    /// cooperative pool the server needs.
    func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    final class Collected: @unchecked Sendable {
        var status = 0
        var headers = HTTPHeaders()
        var body: [UInt8] = []
    }

    func server(_ directory: String) throws -> (HTTPServer, SocketAddress) {
        var router = HTTPRouter()
        router.add(.post, "/echo", maxBodyBytes: 1024) { request in
            let body = try await request.body.collect(upTo: 1024)
            let contentType: String = request.headers["Content-Type"] ?? "-"
            let text: String = String(decoding: body, as: UTF8.self)
            return .text(.ok, "\(request.method.rawValue) \(request.head.target) \(contentType) \(text)")
        }
        router.add(.get, "/lines") { _ in
            HTTPServerResponse(status: .ok, headers: ["X-Kind": "lines"], body: .stream { writer in
                for index in 1...3 { try await writer.write(Array("line \(index)\n".utf8)) }
            })
        }
        router.add(.get, "/missing") { _ in .text(.notFound, "no such thing") }
        // Answers once the client's watch ran (or after 10 s, which fails the test).
        router.add(.get, "/after-watch") { _ in
            for _ in 0..<1000 where !Self.watchServed.value { try await Task.sleep(for: .milliseconds(10)) }
            return .text(.ok, Self.watchServed.value ? "watched" : "not watched")
        }
        let server = HTTPServer(router: router)
        let address = SocketAddress.unix(path: directory + "/http.sock")
        try server.listen(on: address)
        return (server, address)
    }

    @Test func sendsTheRequestAndReadsTheWholeAnswer() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (server, address) = try server(directory)
        let collected = try await onThread {
            let collected = Collected()
            try HTTPBlockingExchange.perform(.post, "/echo?x=1", to: address, host: "localhost", body: Array("hello".utf8),
                                             contentType: "application/json",
                                             onHead: { collected.status = $0.status.code },
                                             onBody: { collected.body += $0; return true })
            return collected
        }
        #expect(collected.status == 200)
        #expect(String(decoding: collected.body, as: UTF8.self) == "POST /echo?x=1 application/json hello")
        await server.shutdown(gracePeriod: .seconds(2))
    }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var set = false
        var value: Bool {
            get { lock.withLock { set } }
            set { lock.withLock { set = newValue } }
        }
    }

    static let watchServed = Flag()

    @Test("a watched descriptor is served while the exchange waits for the answer, which still arrives")
    func servesTheWatchWhileWaiting() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (server, address) = try server(directory)
        var descriptors: [Int32] = [-1, -1]
        #expect(pipe(&descriptors) == 0)
        defer { descriptors.forEach { close($0) } }
        let readEnd = descriptors[0]
        var byte: UInt8 = 7
        #expect(write(descriptors[1], &byte, 1) == 1)  // readable before the request goes out
        let (calls, body) = try await onThread {
            var calls = 0
            var body: [UInt8] = []
            let watch = BlockingSocket.Watch(descriptor: readEnd) {
                var got: UInt8 = 0
                #expect(read(readEnd, &got, 1) == 1 && got == 7)
                calls += 1
                Self.watchServed.value = true
            }
            try HTTPBlockingExchange.perform(.get, "/after-watch", to: address, host: "localhost", body: nil,
                                             responseTimeout: .seconds(30), watching: watch,
                                             onHead: { _ in }, onBody: { body += $0; return true })
            return (calls, body)
        }
        #expect(calls == 1)
        #expect(String(decoding: body, as: UTF8.self) == "watched")
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test("the request head is the bytes HTTPSerializer writes for the same fields")
    func requestHeadAsTheSerializerWritesIt() {
        for (method, target, contentType, length) in [(HTTPMethod.post, "/v1/containers/run", "application/json", 52),
                                                      (.post, "/v1/containers/a%20b/kill?signal=15", nil, nil), (.get, "/", nil, 0)] {
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: "localhost")
            if let contentType { headers.add(name: "Content-Type", value: contentType) }
            if let length { headers.add(name: "Content-Length", value: String(length)) }
            let expected = HTTPSerializer.encode(HTTPRequestHead(method: method, target: target, headers: headers))
            #expect(HTTPBlockingExchange.requestHead(method, target, host: "localhost", contentType: contentType, contentLength: length) == expected)
        }
    }

    @Test("the warm-up's canned chunked response parses to its end, body and all")
    func warmUpParsesItsCannedResponse() {
        #expect(HTTPBlockingExchange.prepareResponseReading())
    }

    @Test func streamsAChunkedBodyAndStopsWhenTold() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (server, address) = try server(directory)
        let whole = try await onThread {
            let collected = Collected()
            try HTTPBlockingExchange.perform(.get, "/lines", to: address, host: "localhost", body: nil,
                                             onHead: { collected.status = $0.status.code; collected.headers = $0.headers },
                                             onBody: { collected.body += $0; return true })
            return collected
        }
        #expect(whole.status == 200)
        #expect(whole.headers["X-Kind"] == "lines")
        #expect(String(decoding: whole.body, as: UTF8.self) == "line 1\nline 2\nline 3\n")
        let pieces = try await onThread {
            var pieces = 0
            try HTTPBlockingExchange.perform(.get, "/lines", to: address, host: "localhost", body: nil,
                                             onHead: { _ in }, onBody: { _ in pieces += 1; return false })
            return pieces
        }
        #expect(pieces == 1)
        let missing = try await onThread {
            let collected = Collected()
            try HTTPBlockingExchange.perform(.get, "/missing", to: address, host: "localhost", body: nil,
                                             onHead: { collected.status = $0.status.code },
                                             onBody: { collected.body += $0; return true })
            return collected
        }
        #expect(missing.status == 404)
        #expect(String(decoding: missing.body, as: UTF8.self).contains("no such thing"))
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func aServerThatHangsUpEarlyIsAnErrorAndNoServerIsTheConnectError() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/cut.sock"
        // A server that answers a head promising 100 bytes, sends 5 and closes.
        let listener = UnixListener(path: path)
        defer { listener.close() }
        Thread {
            let connection = accept(listener.descriptor, nil, nil)
            var request = [UInt8](repeating: 0, count: 4096)
            _ = read(connection, &request, request.count)
            let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello".utf8)
            _ = write(connection, answer, answer.count)
            close(connection)
        }.start()
        let outcome: String = try await onThread {
            do {
                try HTTPBlockingExchange.perform(.get, "/", to: .unix(path: path), host: "localhost", body: nil,
                                                 onHead: { _ in }, onBody: { _ in true })
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(outcome.contains("incomplete"), "\(outcome)")
        let refused: String = try await onThread {
            do {
                try HTTPBlockingExchange.perform(.get, "/", to: .unix(path: directory + "/nobody.sock"), host: "localhost", body: nil,
                                                 onHead: { _ in }, onBody: { _ in true })
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(refused.contains("connect") && refused.contains("nobody.sock"), "\(refused)")
    }

    @Test func aServerThatNeverAnswersTimesOut() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A listener nobody accepts from: the connect succeeds (backlog), no answer comes.
        let listener = UnixListener(path: directory + "/silent.sock")
        defer { listener.close() }
        let outcome: String = try await onThread {
            do {
                try HTTPBlockingExchange.perform(.get, "/", to: .unix(path: directory + "/silent.sock"), host: "localhost", body: nil,
                                                 responseTimeout: .milliseconds(200), onHead: { _ in }, onBody: { _ in true })
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(outcome.contains("no response") && outcome.contains("silent.sock"), "\(outcome)")
    }

    /// A bound, listening Unix socket; accepting is the test's business.
    final class UnixListener: @unchecked Sendable {
        let descriptor: Int32
        init(path: String) {
            descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            }
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            listen(descriptor, 4)
        }
        func close() { Glibc.close(descriptor) }
    }
}

import Foundation
import Testing
import Net
@testable import HTTP

/// Records what handlers saw, across tasks.
final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String] = []
    func add(_ entry: String) { lock.withLock { entries.append(entry) } }
    var all: [String] { lock.withLock { entries } }
}

/// The routes most tests use.
func testRouter(_ recorder: Recorder = Recorder()) -> HTTPRouter {
    var router = HTTPRouter()
    router.add(.get, "/hello") { _ in .text(.ok, "hello\n") }
    router.add(.get, "/v2/<name...>/blobs/<digest>") { request in
        .text(.ok, "\(request.pathParameters["name"]!) \(request.pathParameters["digest"]!) \(request.query["n"] ?? "-")")
    }
    router.add(.put, "/echo", maxBodyBytes: 1024 * 1024) { request in
        recorder.add("expect=\(request.headers["Expect"] ?? "none")")
        let body = try await request.body.collect(upTo: 1024 * 1024)
        return HTTPServerResponse(status: .created, headers: ["X-Trailer-Digest": request.body.trailers["Digest"] ?? "-"], body: .bytes(body))
    }
    router.add(.put, "/small", maxBodyBytes: 16) { request in
        recorder.add("small handler ran")
        _ = try await request.body.collect(upTo: 16)
        return HTTPServerResponse(status: .noContent)
    }
    router.add(.put, "/reject") { _ in .text(.forbidden, "no uploads here\n") }
    router.add(.put, "/count", maxBodyBytes: .max) { request in
        // Checks the body against repeated `countBlock` without per-byte Swift loops.
        recorder.add("count expect=\(request.headers["Expect"] ?? "none") te=\(request.headers["Transfer-Encoding"] ?? "none")")
        var verifier = BlockVerifier(block: countBlock)
        for try await chunk in request.body { verifier.check(chunk) }
        return .text(.ok, "\(verifier.total) \(verifier.firstMismatch.map(String.init) ?? "intact")")
    }
    router.add(.get, "/stream/<bytes>") { request in
        let size = Int(request.pathParameters["bytes"]!)!
        let chunked = request.query["chunked"] == "1"
        return HTTPServerResponse(body: .stream(length: chunked ? nil : size) { writer in
            var sent = 0
            while sent < size {
                let count = min(64 * 1024, size - sent)
                let start = sent % countBlock.count
                try await writer.write(Array((countBlock + countBlock)[start..<start + count]))
                sent += count
            }
            writer.trailers = ["Digest": "done"]
        })
    }
    router.add(.get, "/slow") { _ in
        recorder.add("slow started")
        try await Task.sleep(for: .milliseconds(300))
        return .text(.ok, "slow done")
    }
    router.add(.get, "/order/<n>") { request in
        let n = Int(request.pathParameters["n"]!)!
        // The first answers last if responses were not kept in order.
        try await Task.sleep(for: .milliseconds(n == 1 ? 100 : 0))
        return .text(.ok, "response \(n)")
    }
    router.add(.get, "/redirect") { _ in HTTPServerResponse(status: .found, headers: ["Location": "/hello"]) }
    router.add(.get, "/peer") { request in .text(.ok, request.remoteAddress?.description ?? "?") }
    return router
}

@Suite("HTTP server and client", .timeLimit(.minutes(3)))
struct HTTPServerClientTests {
    @Test func roundTripsOverTCPWithPathParametersQueryAndChunkedBodies() async throws {
        let server = HTTPServer(router: testRouter())
        let address = try server.listen(on: .loopbackIPv4())
        let client = HTTPClient()
        let base = "http://\(address)"

        let (hello, helloBody) = try await client.get(base + "/hello")
        #expect(hello.status == .ok)
        #expect(helloBody == Array("hello\n".utf8))
        #expect(hello.headers["Content-Length"] == "6")
        #expect(hello.headers["Date"] != nil)

        let (blob, blobBody) = try await client.get(base + "/v2/library/tools/busybox/blobs/sha256%3Aab12?n=10")
        #expect(blob.status == .ok)
        #expect(String(decoding: blobBody, as: UTF8.self) == "library/tools/busybox sha256:ab12 10")

        // Chunked both ways: a request body of unknown length with trailers, a chunked response.
        let upload = HTTPClientRequest(method: .put, url: try HTTPURL(base + "/echo"), body: .stream { writer in
            for part in ["chunk one ", "chunk two ", "three"] { try await writer.write(Array(part.utf8)) }
            writer.trailers = ["Digest": "sha256:feed"]
        })
        let echoed = try await client.execute(upload)
        #expect(echoed.status == .created)
        #expect(echoed.headers["X-Trailer-Digest"] == "sha256:feed")
        #expect(try await echoed.body.collect(upTo: 1024) == Array("chunk one chunk two three".utf8))

        let chunked = try await client.execute(HTTPClientRequest(url: try HTTPURL(base + "/stream/300000?chunked=1")))
        #expect(chunked.headers["Transfer-Encoding"] == "chunked")
        #expect(chunked.headers["Content-Length"] == nil)
        #expect(try await chunked.body.collect(upTo: 1 << 20) == pattern(300_000))
        #expect(chunked.body.trailers["Digest"] == "done")

        let missing = try await client.execute(HTTPClientRequest(url: try HTTPURL(base + "/nothing")))
        #expect(missing.status == .notFound)
        _ = try await missing.body.collect(upTo: 1024)
        let wrongMethod = try await client.execute(HTTPClientRequest(method: .delete, url: try HTTPURL(base + "/hello")))
        #expect(wrongMethod.status == .methodNotAllowed)
        #expect(wrongMethod.headers["Allow"] == "GET, HEAD")
        _ = try await wrongMethod.body.collect(upTo: 1024)

        // HEAD: the GET route's head, no body, and the connection stays usable.
        let head = try await client.execute(HTTPClientRequest(method: .head, url: try HTTPURL(base + "/hello")))
        #expect(head.headers["Content-Length"] == "6")
        #expect(try await head.body.collect(upTo: 100).isEmpty)
        #expect(try await client.get(base + "/hello").1 == Array("hello\n".utf8))
        #expect(client.connectionsOpened == 1)

        await client.shutdown()
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func roundTripOverAUnixSocket() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = HTTPServer(router: testRouter())
        try server.listen(on: .unix(path: directory + "/http.sock"))
        let client = HTTPClient()
        let url = try HTTPURL("http+unix://\(PercentEncoding.encode(directory + "/http.sock"))/echo")
        #expect(url.address == .unix(path: directory + "/http.sock"))
        let response = try await client.execute(HTTPClientRequest(method: .put, url: url, body: .string("over unix")))
        #expect(response.status == .created)
        #expect(try await response.body.collect(upTo: 100) == Array("over unix".utf8))
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func roundTripOverMutualTLS() async throws {
        let pki = try TestPKI()
        let server = HTTPServer(router: testRouter())
        let address = try server.listen(on: .loopbackIPv4(), tls: pki.context(nodeID: "manager-1", role: .manager, side: .server))
        let client = HTTPClient(configuration: .init(tls: try pki.context(nodeID: "worker-1", role: .worker, side: .client)))
        let url = try HTTPURL("https://\(address)/stream/200000")
        for _ in 0..<3 {
            let response = try await client.execute(HTTPClientRequest(url: url))
            #expect(response.status == .ok)
            #expect(try await response.body.collect(upTo: 1 << 20) == pattern(200_000))
        }
        #expect(client.connectionsOpened == 1)
        // Without a client TLS context, https is refused with a clear error.
        await #expect(throws: HTTPError.self) { _ = try await HTTPClient().execute(HTTPClientRequest(url: url)) }
        await client.shutdown()
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func keepAliveReusesOneConnectionForAHundredRequests() async throws {
        let server = HTTPServer(router: testRouter())
        let address = try server.listen(on: .loopbackIPv4())
        let client = HTTPClient()
        var peers: Set<String> = []
        for _ in 0..<100 {
            let (response, body) = try await client.get("http://\(address)/peer")
            #expect(response.status == .ok)
            peers.insert(String(decoding: body, as: UTF8.self))
        }
        #expect(client.connectionsOpened == 1)
        #expect(peers.count == 1, "server saw clients \(peers)")
        await client.shutdown()
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func pipelinedRequestsInOnePacketAreAnsweredInOrder() async throws {
        let server = HTTPServer(router: testRouter())
        let address = try server.listen(on: .loopbackIPv4())
        let connection = try await Connection.connect(to: address, deadline: .now + .seconds(5))
        let requests = (1...3).map { "GET /order/\($0) HTTP/1.1\r\nHost: test\r\n\r\n" }.joined()
        try await connection.write(Array(requests.utf8))
        var reader = RawResponseReader(connection: connection)
        for n in 1...3 {
            let (head, body) = try #require(try await reader.next())
            #expect(head.status == .ok)
            #expect(String(decoding: body, as: UTF8.self) == "response \(n)")
        }
        connection.abort()
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func oversizeHeadersGet431AndOversizeBodiesGet413() async throws {
        let recorder = Recorder()
        let server = HTTPServer(router: testRouter(recorder))
        let address = try server.listen(on: .loopbackIPv4())
        let client = HTTPClient()
        var request = HTTPClientRequest(url: try HTTPURL("http://\(address)/hello"))
        for index in 0..<9 { request.headers.add(name: "X-Big-\(index)", value: String(repeating: "b", count: 8 * 1024)) }
        let tooLarge = try await client.execute(request)
        #expect(tooLarge.status.code == 431)
        #expect(tooLarge.headers["Connection"] == "close")

        let body = try await client.execute(HTTPClientRequest(method: .put, url: try HTTPURL("http://\(address)/small"), body: .bytes(pattern(17))))
        #expect(body.status.code == 413)
        #expect(!recorder.all.contains("small handler ran"), "the handler must not run for a declared oversize body")
        // A chunked body crossing the limit is cut off while the handler reads it.
        let chunked = try await client.execute(HTTPClientRequest(method: .put, url: try HTTPURL("http://\(address)/small"), body: .stream { writer in
            for _ in 0..<4 { try await writer.write(pattern(8)) }
        }))
        #expect(chunked.status.code == 413)
        // Raw smuggling attempt: refused with 400 and the connection closed.
        let connection = try await Connection.connect(to: address, deadline: .now + .seconds(5))
        try await connection.write(Array("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        var reader = RawResponseReader(connection: connection)
        let (head, _) = try #require(try await reader.next())
        #expect(head.status == .badRequest)
        #expect(try await reader.next() == nil, "nothing may be answered after a smuggling attempt")
        connection.abort()
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func slowlorisHeadersAreCutOffAtTheHeaderTimeout() async throws {
        var configuration = HTTPServer.Configuration()
        configuration.headerTimeout = .milliseconds(400)
        configuration.idleTimeout = .milliseconds(400)
        let server = HTTPServer(router: testRouter(), configuration: configuration)
        let address = try server.listen(on: .loopbackIPv4())
        let connection = try await Connection.connect(to: address, deadline: .now + .seconds(5))
        let start = ContinuousClock.now
        try await connection.write(Array("GET /hello HTTP/1.1\r\nHost: a\r\n".utf8))
        // Trickle a header line every 100 ms: each read makes progress, but the head never completes.
        let trickle = Task {
            for index in 0..<50 {
                try await Task.sleep(for: .milliseconds(100))
                try await connection.write(Array("X-\(index): y\r\n".utf8))
            }
        }
        var reader = RawResponseReader(connection: connection)
        let response = try await reader.next(timeout: .seconds(5))
        let elapsed = ContinuousClock.now - start
        trickle.cancel()
        #expect(response?.0.status == .requestTimeout)
        #expect(elapsed < .seconds(3), "the slow client was served for \(elapsed)")

        // An idle keep-alive connection is closed after the idle timeout.
        let idle = try await Connection.connect(to: address, deadline: .now + .seconds(5))
        let closed = try await idle.read(deadline: .now + .seconds(5))
        #expect(closed.isEmpty)
        idle.abort()
        connection.abort()
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func gracefulShutdownFinishesInFlightRequestsAndClosesIdleOnes() async throws {
        let recorder = Recorder()
        let server = HTTPServer(router: testRouter(recorder))
        let address = try server.listen(on: .loopbackIPv4())
        let idleClient = HTTPClient()
        _ = try await idleClient.get("http://\(address)/hello")
        #expect(idleClient.idleConnectionCount == 1)

        let client = HTTPClient()
        let inFlight = Task { try await client.get("http://\(address)/slow") }
        while !recorder.all.contains("slow started") { try await Task.sleep(for: .milliseconds(5)) }
        let start = ContinuousClock.now
        await server.shutdown(gracePeriod: .seconds(5))
        let (response, body) = try await inFlight.value
        #expect(response.status == .ok)
        #expect(String(decoding: body, as: UTF8.self) == "slow done")
        #expect(response.headers["Connection"] == "close")
        #expect(ContinuousClock.now - start < .seconds(3))
        #expect(server.openConnectionCount == 0)
        // No longer listening.
        await #expect(throws: (any Error).self) { _ = try await Connection.connect(to: address, deadline: .now + .seconds(2)) }
    }

    @Test func streaming256MiBBothWaysKeepsMemoryBounded() async throws {
        let size = 256 * 1024 * 1024
        let server = HTTPServer(router: testRouter())
        let address = try server.listen(on: .loopbackIPv4())
        let client = HTTPClient()
        let baseline = residentBytes()
        let peak = PeakSampler()
        let sampler = Task { while !Task.isCancelled { peak.sample(); try? await Task.sleep(for: .milliseconds(20)) } }
        defer { sampler.cancel() }

        let blocks = size / countBlock.count
        let upload = try await client.execute(HTTPClientRequest(method: .put, url: try HTTPURL("http://\(address)/count"), body: .stream(length: size) { writer in
            for _ in 0..<blocks { try await writer.write(countBlock) }
        }))
        let uploadAnswer = String(decoding: try await upload.body.collect(upTo: 1000), as: UTF8.self)
        #expect(upload.status == .ok)
        #expect(uploadAnswer == "\(size) intact")

        let download = try await client.execute(HTTPClientRequest(url: try HTTPURL("http://\(address)/stream/\(size)")))
        #expect(download.body.declaredLength == size)
        var verifier = BlockVerifier(block: countBlock)
        for try await chunk in download.body { verifier.check(chunk) }
        #expect(verifier.total == size)
        #expect(verifier.firstMismatch == nil)
        peak.sample()
        let growth = peak.peak - baseline
        #expect(growth < 64 * 1024 * 1024, "RSS grew by \(growth / 1024 / 1024) MiB while streaming 2 × 256 MiB")
        await client.shutdown()
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func clientExpectContinueIsAnsweredOrRejectedEarly() async throws {
        let recorder = Recorder()
        let server = HTTPServer(router: testRouter(recorder))
        let address = try server.listen(on: .loopbackIPv4())
        let client = HTTPClient()
        let start = ContinuousClock.now
        let accepted = try await client.execute(HTTPClientRequest(method: .put, url: try HTTPURL("http://\(address)/echo"), headers: ["Expect": "100-continue"], body: .bytes(pattern(100_000))))
        #expect(accepted.status == .created)
        #expect(try await accepted.body.collect(upTo: 1 << 20) == pattern(100_000))
        #expect(ContinuousClock.now - start < .milliseconds(900), "waited for the expect-continue timeout")
        #expect(recorder.all.contains("expect=100-continue"))

        let sent = Counter()
        let rejected = try await client.execute(HTTPClientRequest(method: .put, url: try HTTPURL("http://\(address)/reject"), headers: ["Expect": "100-continue"], body: .stream(length: 1_000_000) { writer in
            sent.increment()
            try await writer.write(pattern(1_000_000))
        }))
        #expect(rejected.status == .forbidden)
        #expect(sent.value == 0, "the body was sent although the server rejected it first")
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func redirectsAreOffByDefaultAndFollowedWhenAsked() async throws {
        let server = HTTPServer(router: testRouter())
        let address = try server.listen(on: .loopbackIPv4())
        let (plain, _) = try await HTTPClient().get("http://\(address)/redirect")
        #expect(plain.status == .found)
        var configuration = HTTPClient.Configuration()
        configuration.maxRedirects = 3
        let (followed, body) = try await HTTPClient(configuration: configuration).get("http://\(address)/redirect")
        #expect(followed.status == .ok)
        #expect(body == Array("hello\n".utf8))
        #expect(followed.url.target == "/hello")
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func clientRetriesAKeptAliveConnectionTheServerClosed() async throws {
        var configuration = HTTPServer.Configuration()
        configuration.idleTimeout = .milliseconds(100)
        let server = HTTPServer(router: testRouter(), configuration: configuration)
        let address = try server.listen(on: .loopbackIPv4())
        let client = HTTPClient()
        _ = try await client.get("http://\(address)/hello")
        try await Task.sleep(for: .milliseconds(400))
        let (response, body) = try await client.get("http://\(address)/hello")
        #expect(response.status == .ok)
        #expect(body == Array("hello\n".utf8))
        #expect(client.connectionsOpened == 2)
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func connectionRefusedIsATypedError() async throws {
        let listener = try TCPListener.bind(.loopbackIPv4())
        let address = listener.localAddress
        listener.close()
        await #expect(throws: SystemError.self) { _ = try await HTTPClient().get("http://\(address)/") }
        #expect(throws: HTTPError.self) { _ = try HTTPURL("http://registry.example:5000/") }
    }
}

/// The block streamed bodies repeat (64 KiB, so writes of 64 KiB line up).
let countBlock = pattern(64 * 1024)

/// Compares a stream against a repeated block with memcmp (fast even in debug builds).
struct BlockVerifier {
    let block: [UInt8]
    var total = 0
    var firstMismatch: Int?

    mutating func check(_ chunk: [UInt8]) {
        var index = 0
        while index < chunk.count {
            let offset = (total + index) % block.count
            let count = min(block.count - offset, chunk.count - index)
            let equal = chunk.withUnsafeBytes { received in
                block.withUnsafeBytes { expected in
                    memcmp(received.baseAddress! + index, expected.baseAddress! + offset, count) == 0
                }
            }
            if !equal, firstMismatch == nil { firstMismatch = total + index }
            index += count
        }
        total += chunk.count
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

final class PeakSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var highest = 0
    func sample() {
        let now = residentBytes()
        lock.withLock { highest = max(highest, now) }
    }
    var peak: Int { lock.withLock { highest } }
}

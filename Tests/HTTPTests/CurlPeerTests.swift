import TestSupport
import Foundation
import Testing
import Net
@testable import HTTP

/// curl as an independent client of our server.
@Suite("curl against our server", .timeLimit(.minutes(2)), .enabled(if: curlAvailable))
struct CurlPeerTests {
    @Test func getAndHead() async throws {
        let server = HTTPServer(router: testRouter())
        let address = try server.listen(on: .loopbackIPv4())
        let get = try await run(curlPath, ["-sS", "-w", "|%{http_code}|%{num_connects}", "http://\(address)/hello", "http://\(address)/v2/a/b/blobs/sha256%3A01?n=2"])
        #expect(get.output == "hello\n|200|1a/b sha256:01 2|200|0", "curl: \(get.error)")
        let head = try await run(curlPath, ["-sS", "-I", "http://\(address)/hello"])
        #expect(head.output.hasPrefix("HTTP/1.1 200 OK\r\n"), "curl: \(head.output) \(head.error)")
        #expect(head.output.contains("Content-Length: 6\r\n"))
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func uploadsWithExpectContinueDoNotWaitASecond() async throws {
        let recorder = Recorder()
        let server = HTTPServer(router: testRouter(recorder))
        let address = try server.listen(on: .loopbackIPv4())
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/upload.bin"
        let size = 4 * 1024 * 1024
        try Data((0..<(size / countBlock.count)).flatMap { _ in countBlock }).write(to: URL(fileURLWithPath: file))

        // curl -T sends `Expect: 100-continue` for bodies over 1 MiB and waits 1 s for our 100.
        let put = try await run(curlPath, ["-sS", "-T", file, "-w", "|%{http_code}|%{time_total}", "http://\(address)/count"])
        let parts = put.output.split(separator: "|")
        #expect(parts.first == "\(size) intact", "curl: \(put.output) \(put.error)")
        #expect(parts.dropFirst().first == "200")
        let seconds = Double(parts.last ?? "9") ?? 9
        #expect(seconds < 0.9, "curl took \(seconds) s: it waited for 100 Continue; \(put.error)")
        #expect(recorder.all.contains("count expect=100-continue te=none"), "\(recorder.all)")

        // Chunked upload.
        let chunked = try await run(curlPath, ["-sS", "-X", "PUT", "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + file, "-w", "|%{http_code}|%{time_total}", "http://\(address)/count"])
        #expect(chunked.output.hasPrefix("\(size) intact|200|"), "curl: \(chunked.output) \(chunked.error)")
        #expect(recorder.all.contains { $0.hasPrefix("count") && $0.hasSuffix("te=chunked") }, "\(recorder.all)")

        // An early rejection: the final status instead of 100, no upload, no 1 s wait.
        let rejected = try await run(curlPath, ["-sS", "-T", file, "-o", "/dev/null", "-w", "%{http_code}|%{time_total}|%{size_upload}", "http://\(address)/reject"])
        let rejectedParts = rejected.output.split(separator: "|")
        #expect(rejectedParts.first == "403", "curl: \(rejected.output) \(rejected.error)")
        #expect((Double(rejectedParts.dropFirst().first ?? "9") ?? 9) < 0.9)
        #expect((Double(rejectedParts.last ?? "0") ?? Double(size)) < Double(size), "curl uploaded the whole body to a rejecting route")
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func unixSocketAndMutualTLS() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try TestPKI()
        let server = HTTPServer(router: testRouter())
        try server.listen(on: .unix(path: directory + "/curl.sock"))
        let tlsAddress = try server.listen(on: .loopbackIPv4(), tls: pki.context(nodeID: "manager-1", role: .manager, side: .server))

        let unix = try await run(curlPath, ["-sS", "--unix-socket", directory + "/curl.sock", "-X", "PUT", "--data-binary", "via unix", "http://localhost/echo"])
        #expect(unix.output == "via unix", "curl: \(unix.error)")

        let (certificate, key, _) = try pki.writeClientFiles(in: directory)
        // -k: node certificates name a node (CN), not a host name; identity is checked by subject.
        let tls = try await run(curlPath, ["-sS", "-k", "--cert", certificate, "--key", key, "https://\(tlsAddress)/stream/100000", "-o", directory + "/out", "-w", "%{http_code}"])
        #expect(tls.output == "200", "curl: \(tls.error)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/out")) == Data(pattern(100_000)))
        // Without a client certificate the handshake is refused.
        let anonymous = try await run(curlPath, ["-sS", "-k", "https://\(tlsAddress)/hello"])
        #expect(anonymous.status != 0)
        await server.shutdown(gracePeriod: .seconds(2))
    }
}

import TestSupport
import Foundation
import Testing
import Net
@testable import HTTP

private func head(_ range: String?, method: HTTPMethod = .get, ifRange: String? = nil) -> HTTPRequestHead {
    var headers: HTTPHeaders = ["Host": "a"]
    if let range { headers.add(name: "Range", value: range) }
    if let ifRange { headers.add(name: "If-Range", value: ifRange) }
    return HTTPRequestHead(method: method, target: "/blob", version: .http1_1, headers: headers)
}

/// The body the range routes serve: 1000 bytes of a counting pattern.
private let blob = pattern(1000)

@Suite("HTTP Range", .timeLimit(.minutes(2)))
struct HTTPRangeTests {
    /// Every case: the Range field → what a 1000-byte representation answers.
    @Test func selectionTranscript() {
        let cases: [(String?, HTTPRangeSelection)] = [
            (nil, .full),
            ("bytes=0-99", .partial(0...99)),
            ("bytes=100-", .partial(100...999)),
            ("bytes=-100", .partial(900...999)),
            ("bytes=-5000", .partial(0...999)),
            ("bytes=990-5000", .partial(990...999)),
            ("bytes=999-999", .partial(999...999)),
            ("Bytes = 5-6", .partial(5...6)),
            ("bytes=1000-", .unsatisfiable),
            ("bytes=1000-2000", .unsatisfiable),
            ("bytes=-0", .unsatisfiable),
            ("bytes=99999999999999999999999-", .unsatisfiable),
            // Ignored: several ranges, other units, bad syntax.
            ("bytes=0-1,5-6", .full),
            ("items=0-1", .full),
            ("bytes=5-4", .full),
            ("bytes=-", .full),
            ("bytes=a-b", .full),
            ("bytes=+1-2", .full),
            ("bytes 0-1", .full),
            ("", .full),
        ]
        for (range, expected) in cases {
            #expect(HTTPRangeSelection.select(for: head(range), length: 1000) == expected, "Range: \(range ?? "none")")
        }
        #expect(HTTPRangeSelection.select(for: head("bytes=0-1", method: .head), length: 1000) == .full)
        #expect(HTTPRangeSelection.select(for: head("bytes=0-1", ifRange: "\"etag\""), length: 1000) == .full)
        #expect(HTTPRangeSelection.select(for: head("bytes=0-0"), length: 0) == .unsatisfiable)
        #expect(HTTPRangeSelection.select(for: head("bytes=-1"), length: 0) == .unsatisfiable)
    }

    @Test func headerValuesRoundTrip() {
        for range in [HTTPByteRange.bounded(first: 0, last: 9), .from(first: 7), .suffix(count: 3)] {
            #expect(HTTPByteRange(headerValue: range.headerValue) == range)
        }
        #expect(HTTPContentRange(headerValue: "bytes 0-99/1000") == HTTPContentRange(offsets: 0...99, completeLength: 1000))
        #expect(HTTPContentRange(headerValue: "bytes 0-99/*") == HTTPContentRange(offsets: 0...99, completeLength: nil))
        #expect(HTTPContentRange(headerValue: "bytes */1000") == HTTPContentRange(offsets: nil, completeLength: 1000))
        for bad in ["bytes */*", "bytes 5-4/10", "bytes 0-10/10", "bytes 0-1", "items 0-1/2", "bytes -1-2/3"] {
            #expect(HTTPContentRange(headerValue: bad) == nil, "\(bad)")
        }
    }

    private func rangeServer() throws -> (HTTPServer, SocketAddress) {
        var router = HTTPRouter()
        router.add(.get, "/blob") { request in
            .ranged(for: request.head, bytes: blob, headers: ["Content-Type": "application/octet-stream"])
        }
        router.add(.get, "/streamed") { request in
            // A streamed body of exactly the selected bytes, as a blob store would seek.
            .ranged(for: request.head, length: blob.count) { offsets in
                guard let offsets else { return .empty }
                return .stream(length: offsets.count) { writer in try await writer.write(Array(blob[offsets])) }
            }
        }
        let server = HTTPServer(router: router)
        return (server, try server.listen(on: .loopbackIPv4()))
    }

    @Test(.enabled(if: curlAvailable)) func curlRangeRequests() async throws {
        let (server, address) = try rangeServer()
        for path in ["/blob", "/streamed"] {
            let url = "http://\(address)\(path)"
            let cases: [(arguments: [String], status: String, body: [UInt8], contentRange: String?)] = [
                (["-r", "0-99"], "206", Array(blob[0...99]), "bytes 0-99/1000"),
                (["-r", "100-"], "206", Array(blob[100...]), "bytes 100-999/1000"),
                (["-r", "-10"], "206", Array(blob[990...]), "bytes 990-999/1000"),
                (["-r", "990-2000"], "206", Array(blob[990...]), "bytes 990-999/1000"),
                (["-r", "1000-"], "416", [], "bytes */1000"),
                (["-r", "0-1,5-6"], "200", blob, nil),
                ([], "200", blob, nil),
            ]
            for item in cases {
                let directory = try temporaryDirectory()
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let result = try await run(curlPath, ["-sS", "-D", directory + "/head", "-o", directory + "/body", "-w", "%{http_code}"] + item.arguments + [url])
                #expect(result.output == item.status, "\(path) \(item.arguments): \(result.output) \(result.error)")
                let body = (try? Data(contentsOf: URL(fileURLWithPath: directory + "/body"))).map(Array.init) ?? []
                #expect(body == item.body, "\(path) \(item.arguments): \(body.count) bytes")
                let headText = (try? String(contentsOfFile: directory + "/head", encoding: .utf8)) ?? ""
                let contentRange = headText.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-range:") }
                    .map { String($0.dropFirst("content-range:".count)).trimmingCharacters(in: .whitespaces) }
                #expect(contentRange == item.contentRange, "\(path) \(item.arguments): \(headText)")
                #expect(headText.contains("Accept-Ranges: bytes"), "\(path) \(item.arguments): \(headText)")
            }
        }
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func clientSendsRangeAndReadsContentRange() async throws {
        let (server, address) = try rangeServer()
        let client = HTTPClient()
        var request = HTTPClientRequest(url: try HTTPURL("http://\(address)/streamed"))
        request.byteRange = .bounded(first: 10, last: 19)
        #expect(request.headers["Range"] == "bytes=10-19")
        let partial = try await client.execute(request)
        #expect(partial.status == .partialContent)
        #expect(partial.contentRange == HTTPContentRange(offsets: 10...19, completeLength: 1000))
        #expect(try await partial.body.collect(upTo: 1 << 20) == Array(blob[10...19]))

        request.byteRange = .suffix(count: 0)
        let refused = try await client.execute(request)
        #expect(refused.status == .rangeNotSatisfiable)
        #expect(refused.contentRange == HTTPContentRange(offsets: nil, completeLength: 1000))
        #expect(try await refused.body.collect(upTo: 1 << 20) == [])

        request.byteRange = nil
        #expect(request.headers["Range"] == nil)
        let whole = try await client.execute(request)
        #expect(whole.status == .ok)
        #expect(try await whole.body.collect(upTo: 1 << 20) == blob)
        // All three on one kept-alive connection: a 416 leaves it usable.
        #expect(client.connectionsOpened == 1)
        await client.shutdown()
        await server.shutdown(gracePeriod: .seconds(2))
    }
}

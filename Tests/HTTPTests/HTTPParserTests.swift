import Foundation
import Testing
@testable import HTTP

/// Parses `bytes` fed in the given pieces, returning every event (adjacent
/// body events merged, so splits do not change the transcript) or the error.
private func parse(_ pieces: [[UInt8]], kind: HTTPParser.Kind = .request, limits: HTTPParserLimits = .default, finish: Bool = false) -> (events: [HTTPParserEvent], error: HTTPParseError?) {
    var parser = HTTPParser(kind: kind, limits: limits)
    var events: [HTTPParserEvent] = []
    func append(_ event: HTTPParserEvent) {
        if case .body(let more) = event, case .body(let earlier)? = events.last {
            events[events.count - 1] = .body(earlier + more)
        } else {
            events.append(event)
        }
    }
    do {
        for piece in pieces {
            parser.feed(piece)
            while let event = try parser.next() { append(event) }
        }
        if finish {
            parser.finishInput()
            while let event = try parser.next() { append(event) }
        }
        return (events, nil)
    } catch {
        return (events, error)
    }
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

private func parseError(_ text: String, limits: HTTPParserLimits = .default) -> HTTPParseError? {
    parse([bytes(text)], limits: limits).error
}

@Suite("HTTP/1.1 parser")
struct HTTPParserTests {
    static let pipelined = bytes(
        "GET /v2/library/busybox/manifests/latest?n=1&digest=sha256%3Aab HTTP/1.1\r\nHost: a\r\nAccept: x\r\naccept: y\r\n\r\n"
            + "PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
            + "POST /chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nDigest: sha256:00\r\n\r\n"
    )

    @Test func pipelinedStreamGivesTheSameEventsAtEverySplitPoint() throws {
        let whole = parse([Self.pipelined])
        #expect(whole.error == nil)
        #expect(whole.events.count == 8)
        guard case .request(let first) = whole.events[0] else { Issue.record("first event \(whole.events[0])"); return }
        #expect(first.method == .get)
        #expect(first.headers.values(for: "ACCEPT") == ["x", "y"])
        #expect(first.query["digest"] == "sha256:ab")
        #expect(first.rawPath == "/v2/library/busybox/manifests/latest")
        #expect(whole.events[1] == .end(trailers: HTTPHeaders()))
        #expect(whole.events[3] == .body(bytes("hello world")))
        #expect(whole.events[6] == .body(bytes("hello world")))
        #expect(whole.events[7] == .end(trailers: ["Digest": "sha256:00"]))

        for split in 0...Self.pipelined.count {
            let pieces = [Array(Self.pipelined[..<split]), Array(Self.pipelined[split...])]
            let result = parse(pieces)
            #expect(result.error == nil, "split at \(split)")
            #expect(result.events == whole.events, "split at \(split)")
        }
        // And byte by byte.
        let oneByteAtATime = parse(Self.pipelined.map { [$0] })
        #expect(oneByteAtATime.events == whole.events)
    }

    @Test func pipelinedEventsEndEachMessage() {
        let events = parse([Self.pipelined]).events
        let kinds = events.map { event -> String in
            switch event {
            case .request(let head): return "request \(head.method) \(head.target)"
            case .response: return "response"
            case .body(let body): return "body \(body.count)"
            case .end(let trailers): return "end \(trailers.count)"
            }
        }
        #expect(kinds == [
            "request GET /v2/library/busybox/manifests/latest?n=1&digest=sha256%3Aab", "end 0",
            "request PUT /upload", "body 11", "end 0",
            "request POST /chunks", "body 11", "end 1",
        ])
    }

    @Test func smugglingPatternsAreRefusedWith400() {
        let cases: [(String, HTTPParseError)] = [
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .contentLengthWithTransferEncoding),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", .contentLengthWithTransferEncoding),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .conflictingContentLength(["5", "6"])),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", .conflictingContentLength(["5", "6"])),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", .invalidContentLength("+5")),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", .invalidContentLength("0x5")),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", .invalidContentLength("99999999999999999999")),
            ("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n", .obsoleteLineFolding),
            ("GET / HTTP/1.1\nHost: a\r\n\r\n", .bareLineTerminator),
            ("GET / HTTP/1.1\r\nHost: a\n\r\n", .bareLineTerminator),
            ("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", .bareLineTerminator),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", .malformedField("field name \"Transfer-Encoding \" has characters outside the token set (whitespace before the colon?)")),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", .chunkedNotFinal("chunked, identity")),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .chunkedNotFinal("chunked")),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", .bareLineTerminator),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", .malformedChunk("chunk data not followed by CRLF (the chunk size does not match its data)")),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", .malformedChunk("chunk size has more than 15 hex digits")),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", .malformedChunk("chunk size line \"-1\" does not start with hex digits")),
            ("GET / HTTP/1.1\r\n\r\n", .invalidHost("no Host field")),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .invalidHost("2 Host fields")),
            ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .malformedStartLine("GET  / HTTP/1.1")),
            ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", .malformedStartLine("GET / HTTP/1.1 ")),
            ("GET /\u{7F} HTTP/1.1\r\nHost: a\r\n\r\n", .malformedStartLine("GET /\u{7F} HTTP/1.1")),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", .malformedField("control character 0x0 in the value of X")),
        ]
        for (request, expected) in cases {
            let error = parseError(request)
            #expect(error == expected, "\(request.debugDescription)")
            #expect(error?.status == .badRequest, "\(request.debugDescription)")
        }
    }

    @Test func unknownTransferCodingsAndVersionsAreNotImplemented() {
        #expect(parseError("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")?.status == .notImplemented)
        #expect(parseError("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n")?.status == .notImplemented)
        #expect(parseError("GET / HTTP/2.0\r\nHost: a\r\n\r\n")?.status == .httpVersionNotSupported)
    }

    @Test func identicalDuplicateContentLengthIsOneLength() {
        let result = parse([bytes("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc")])
        #expect(result.error == nil)
        #expect(result.events.count == 3)
        #expect(result.events[1] == .body(bytes("abc")))
    }

    @Test func oversizeHeadsGive431AndLongLinesAreRefusedBeforeTheyEnd() {
        var limits = HTTPParserLimits()
        limits.maxHeadBytes = 1024
        limits.maxFieldLineBytes = 512
        limits.maxFieldCount = 8
        limits.maxRequestLineBytes = 256
        let many = "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<8).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        #expect(parseError(many, limits: limits) == .tooManyFields(limit: 8))
        let big = "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<5).map { "X-\($0): \(String(repeating: "v", count: 250))\r\n" }.joined() + "\r\n"
        #expect(parseError(big, limits: limits) == .headTooLarge(limitBytes: 1024))
        #expect(parseError(big, limits: limits)?.status == .requestHeaderFieldsTooLarge)
        // A field line that never ends is refused once it passes the line limit.
        let endless = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "v", count: 600)
        #expect(parseError(endless, limits: limits) == .fieldLineTooLong(limitBytes: 512))
        #expect(parseError(endless, limits: limits)?.status.code == 431)
        let longTarget = "GET /" + String(repeating: "a", count: 300)
        #expect(parseError(longTarget, limits: limits)?.status == .uriTooLong)
        // The default limit: 64 KiB of head.
        let huge = "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<10).map { "X-\($0): \(String(repeating: "v", count: 8 * 1024))\r\n" }.joined() + "\r\n"
        #expect(parseError(huge) == .headTooLarge(limitBytes: 64 * 1024))
    }

    @Test func oversizeBodiesGive413() throws {
        var limits = HTTPParserLimits()
        limits.maxBodyBytes = 10
        #expect(parseError("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", limits: limits) == .bodyTooLarge(limitBytes: 10))
        #expect(parseError("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", limits: limits)?.status == .contentTooLarge)
        // Chunked: refused on the chunk size that crosses the limit, before its data.
        let chunked = "PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n6\r\n"
        let result = parse([bytes(chunked)], limits: limits)
        #expect(result.error == .bodyTooLarge(limitBytes: 10))
        #expect(result.events.count == 2)

        // A route raises or lowers the limit after the head.
        var parser = HTTPParser(kind: .request, limits: limits)
        parser.feed(bytes("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n"))
        guard case .request? = try parser.next() else { Issue.record("no head"); return }
        #expect(throws: HTTPParseError.bodyTooLarge(limitBytes: 10)) { _ = try parser.next() }
        var allowed = HTTPParser(kind: .request, limits: limits)
        allowed.feed(bytes("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n"))
        _ = try allowed.next()
        try allowed.setBodyLimit(.max)
        #expect(try allowed.next() == nil)
        var raised = HTTPParser(kind: .request, limits: .default)
        raised.feed(bytes("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n"))
        guard case .request? = try raised.next() else { Issue.record("no head"); return }
        #expect(throws: HTTPParseError.bodyTooLarge(limitBytes: 5)) { try raised.setBodyLimit(5) }
        // The next message gets the default limit again.
        var next = HTTPParser(kind: .request, limits: limits)
        next.feed(bytes("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcPUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd"))
        _ = try next.next()
        try next.setBodyLimit(3)
        #expect(try next.next() == .body(bytes("abc")))
        #expect(try next.next() == .end(trailers: HTTPHeaders()))
        guard case .request? = try next.next() else { Issue.record("no second head"); return }
        #expect(try next.next() == .body(bytes("abcd")))
    }

    @Test func leadingEmptyLinesBeforeARequestAreIgnored() {
        let result = parse([bytes("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")])
        #expect(result.error == nil)
        #expect(result.events.count == 2)
    }

    @Test func endOfStreamInsideAMessageIsAnError() {
        #expect(parse([bytes("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab")], finish: true).error == .unexpectedEndOfStream("with 3 body bytes still due"))
        #expect(parse([bytes("GET / HTTP/1.1\r\nHo")], finish: true).error == .unexpectedEndOfStream("inside a message head"))
        #expect(parse([bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n")], finish: true).error == nil)
    }

    @Test func responsesHonourHeadRequestsStatusesWithoutContentAndCloseDelimitedBodies() throws {
        var parser = HTTPParser(kind: .response)
        parser.expectResponse(to: .head)
        parser.expectResponse(to: .put)
        parser.expectResponse(to: .get)
        parser.expectResponse(to: .get)
        parser.feed(bytes("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"))
        parser.feed(bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"))
        parser.feed(bytes("HTTP/1.1 204 No Content\r\n\r\n"))
        parser.feed(bytes("HTTP/1.0 200\r\n\r\nuntil close"))
        var events: [HTTPParserEvent] = []
        while let event = try parser.next() { events.append(event) }
        parser.finishInput()
        while let event = try parser.next() { events.append(event) }
        let statuses = events.compactMap { event -> Int? in
            if case .response(let head) = event { return head.status.code }
            return nil
        }
        #expect(statuses == [200, 100, 201, 204, 200])
        #expect(events.contains(.body(bytes("ok"))))
        #expect(events.contains(.body(bytes("until close"))))
        #expect(events.filter { if case .end = $0 { return true } else { return false } }.count == 4)
    }

    @Test("status lines: version, code and reason (which may hold spaces or be absent)", arguments: [
        ("HTTP/1.1 200 OK", 200, "OK"), ("HTTP/1.1 200", 200, ""), ("HTTP/1.1 200 ", 200, ""),
        ("HTTP/1.0 404 Not  Found here ", 404, "Not  Found here "), ("HTTP/1.1 101 \t", 101, "\t"),
    ])
    func statusLines(_ line: String, _ code: Int, _ reason: String) throws {
        let head = try HTTPParser.parseStatusLine(ArraySlice(bytes(line)))
        #expect(head.status.code == code && head.status.reasonPhrase == reason && head.version.minor == (line.hasPrefix("HTTP/1.0") ? 0 : 1))
    }

    @Test("malformed status lines are refused with the line", arguments: [
        "HTTP/1.1", "HTTP/1.1200 OK", "HTTP/1.1  200 OK", "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 099 Early", "HTTP/1.1 2x0 OK",
        "HTTP/1.1 200 O\u{7F}K", " HTTP/1.1 200 OK", "HTTP/1.x 200 OK", "",
    ])
    func malformedStatusLines(_ line: String) {
        #expect(throws: HTTPParseError.malformedStartLine(line)) { try HTTPParser.parseStatusLine(ArraySlice(bytes(line))) }
    }

    @Test func statusLinesOfAnotherVersionAreUnsupported() {
        #expect(throws: HTTPParseError.unsupportedVersion("HTTP/2.0")) { try HTTPParser.parseStatusLine(ArraySlice(bytes("HTTP/2.0 200 OK"))) }
    }

    @Test("a response's Transfer-Encoding: chunked in any case and spacing is decoded; other codings are refused, named as sent",
          arguments: ["chunked", "Chunked", " CHUNKED\t", "identity, chunked", "gzip", "gzip, chunked", ",chunked", "chunked,"])
    func responseTransferCodings(_ value: String) throws {
        var parser = HTTPParser(kind: .response)
        parser.expectResponse(to: .get)
        parser.feed(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: \(value)\r\n\r\n2\r\nok\r\n0\r\n\r\n"))
        var body: [UInt8] = []
        var failure: HTTPParseError?
        do {
            while let event = try parser.next() { if case .body(let bytes) = event { body += bytes } }
        } catch {
            failure = error
        }
        // RFC 9112 §6.1: only a final "chunked" (alone here: we decode no other coding) frames the body.
        let codings = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        if codings == ["chunked"] {
            #expect(failure == nil && body == bytes("ok"), "\(value.debugDescription): \(String(describing: failure))")
        } else {
            let trimmed = value.trimmingCharacters(in: .whitespaces)
            #expect(failure == .unsupportedTransferCoding(trimmed), "\(value.debugDescription): \(String(describing: failure))")
        }
    }

    @Test func queryAndPathDecoding() {
        let head = HTTPRequestHead(method: .put, target: "/v2/a/b/blobs/uploads/u1?digest=sha256%3Aabc&x=a+b&flag&empty=&bad=%zz")
        #expect(head.query["digest"] == "sha256:abc")
        #expect(head.query["x"] == "a b")
        #expect(head.query["flag"] == "")
        #expect(head.query["empty"] == "")
        #expect(head.query["bad"] == "%zz")
        #expect(PercentEncoding.decode("a%2Fb") == "a/b")
        #expect(PercentEncoding.decode("%E2%82%AC") == "€")
        #expect(PercentEncoding.decode("%FF") == nil)
        #expect(PercentEncoding.encode("sha256:ab/c d") == "sha256%3Aab%2Fc%20d")
    }

    @Test func headersCompareNamesCaseInsensitively() {
        var headers: HTTPHeaders = ["Content-Type": "a", "Connection": "keep-alive, Close"]
        #expect(headers["content-type"] == "a")
        #expect(headers.contains(name: "CONNECTION", token: "close"))
        headers.replaceOrAdd(name: "content-TYPE", value: "b")
        #expect(headers.values(for: "Content-Type") == ["b"])
        #expect(!HTTPHeaders.equalNames("a-b", "a_b"))
        #expect(!HTTPHeaders.equalNames("[", "{"))
    }
}

import struct Raft.SeededGenerator
import Testing
@testable import HTTP


/// How one input ended: the events (adjacent body pieces merged, so that
/// splits do not change it) and the error, if any.
private struct Outcome: Equatable {
    var events: [HTTPParserEvent] = []
    var error: HTTPParseError?
    var requests: Int { events.filter { if case .request = $0 { return true } else { return false } }.count }
}

/// Feeds `pieces`, pulls every event, then ends the input. The event count
/// is bounded by the input size, so a parser that loops without consuming
/// fails the test instead of hanging it.
private func run(_ pieces: [ArraySlice<UInt8>], limits: HTTPParserLimits) -> Outcome {
    var parser = HTTPParser(kind: .request, limits: limits)
    var outcome = Outcome()
    let maxEvents = pieces.reduce(0) { $0 + $1.count } * 2 + 8
    func pull() throws(HTTPParseError) {
        while let event = try parser.next() {
            if case .body(let more) = event, case .body(let earlier)? = outcome.events.last {
                outcome.events[outcome.events.count - 1] = .body(earlier + more)
            } else {
                outcome.events.append(event)
            }
            precondition(outcome.events.count <= maxEvents, "the parser produced more events than bytes: it loops")
        }
    }
    do throws(HTTPParseError) {
        for piece in pieces {
            parser.feed(piece)
            try pull()
        }
        parser.finishInput()
        try pull()
    } catch {
        outcome.error = error
    }
    return outcome
}

/// Hostile requests, bounded and seeded: the parser never traps, never
/// loops, ends every input in requests or a typed ``HTTPParseError``, and
/// reaches the same outcome wherever the input is split.
@Suite("HTTP parser fuzz")
struct HTTPParserFuzzTests {
    static let inputCount = 50_000
    /// Inputs whose every split point is checked (the rest get one random split).
    static let everySplitEvery = 100

    static let corpus: [[UInt8]] = [
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /v2/library/busybox/manifests/latest?n=1&digest=sha256%3Aab HTTP/1.1\r\nHost: a\r\nAccept: x\r\naccept: y\r\n\r\n",
        "PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
        "POST /chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nDigest: sha256:00\r\n\r\n",
        "GET /a HTTP/1.0\r\n\r\nHEAD /b HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        "PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: r\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        "\r\nDELETE /x HTTP/1.1\r\nHost: a\r\nRange: bytes=0-9\r\n\r\n",
    ].map { Array($0.utf8) }

    /// Pieces of HTTP that random inputs are built from, so the fuzz gets past
    /// the request line into fields, framing and chunks.
    static let tokens: [[UInt8]] = [
        "GET", "PUT", "POST", "HEAD", "CONNECT", " ", "/", "/v2/a", "?", "%3A", "%", " HTTP/1.1", " HTTP/1.0", " HTTP/2.0",
        "\r\n", "\r", "\n", "\r\n\r\n", ":", ": ", "Host", "Content-Length", "Transfer-Encoding", "chunked", "gzip, chunked",
        "0", "5", "ff", "-1", "99999999999999999999", ";ext=1", "\t", "Expect", "100-continue", "Connection", "close", "\u{7f}", "\0",
    ].map { Array($0.utf8) }

    static var smallLimits: HTTPParserLimits {
        var limits = HTTPParserLimits()
        limits.maxRequestLineBytes = 64
        limits.maxFieldLineBytes = 48
        limits.maxHeadBytes = 160
        limits.maxFieldCount = 6
        limits.maxChunkLineBytes = 16
        limits.maxBodyBytes = 64
        return limits
    }

    private func randomInput(_ random: inout SeededGenerator) -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<Int.random(in: 0...24, using: &random) {
            if Int.random(in: 0..<4, using: &random) == 0 {
                bytes.append(UInt8.random(in: 0...255, using: &random))
            } else {
                bytes += Self.tokens.randomElement(using: &random)!
            }
        }
        return bytes
    }

    private func mutate(_ valid: [UInt8], _ random: inout SeededGenerator) -> [UInt8] {
        var bytes = valid
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0 where !bytes.isEmpty: bytes[position] = UInt8.random(in: 0...255, using: &random)
            case 1 where !bytes.isEmpty: bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 2 where !bytes.isEmpty: bytes.remove(at: position)
            case 3: bytes.insert(contentsOf: Self.tokens.randomElement(using: &random)!, at: position)
            case 4 where !bytes.isEmpty:
                let end = min(bytes.count, position + Int.random(in: 1...16, using: &random))
                bytes.insert(contentsOf: bytes[position..<end], at: position)
            default: bytes = Array(bytes.prefix(position))
            }
        }
        return bytes
    }

    @Test func randomAndMutatedRequestsEndInRequestsOrTypedErrorsAtEverySplit() {
        let seed: UInt64 = 0x4854_5450_0001
        var random = SeededGenerator(seed: seed)
        var tally = (requests: 0, errors: 0, empty: 0)
        var errorKinds = Set<String>()
        for iteration in 0..<Self.inputCount {
            let input: [UInt8]
            switch iteration % 3 {
            case 0: input = randomInput(&random)
            case 1: input = mutate(Self.corpus.randomElement(using: &random)!, &random)
            default: input = mutate(Self.corpus.randomElement(using: &random)! + Self.corpus.randomElement(using: &random)!, &random)
            }
            let limits = iteration % 2 == 0 ? HTTPParserLimits.default : Self.smallLimits
            let whole = run([input[...]], limits: limits)
            let context = "seed \(seed) iteration \(iteration): \(String(decoding: input, as: UTF8.self).debugDescription)"
            if let error = whole.error {
                tally.errors += 1
                errorKinds.insert(String(describing: error).prefix(24).description)
            } else if whole.requests > 0 {
                tally.requests += 1
            } else {
                // Neither: only an empty stream (nothing but tolerated empty lines) may end so.
                #expect(input.allSatisfy { $0 == 0x0D || $0 == 0x0A }, "no request and no error: \(context)")
                tally.empty += 1
            }
            let splits: [Int] = iteration % Self.everySplitEvery == 0
                ? Array(0...input.count)
                : [Int.random(in: 0...input.count, using: &random)]
            for split in splits {
                let pieces = [input[..<split], input[split...]]
                #expect(run(pieces, limits: limits) == whole, "split at \(split): \(context)")
            }
        }
        // The fuzz must exercise both outcomes, and many distinct errors.
        #expect(tally.requests > Self.inputCount / 20, "\(tally)")
        #expect(tally.errors > Self.inputCount / 5, "\(tally)")
        #expect(errorKinds.count >= 10, "\(errorKinds.sorted())")
    }

    @Test func byteAtATimeMatchesWholeFeed() {
        var random = SeededGenerator(seed: 0x4854_5450_0002)
        for iteration in 0..<2_000 {
            let input = mutate(Self.corpus.randomElement(using: &random)!, &random)
            let whole = run([input[...]], limits: .default)
            let pieces = input.indices.map { input[$0...$0] }
            #expect(run(pieces, limits: .default) == whole, "iteration \(iteration): \(String(decoding: input, as: UTF8.self).debugDescription)")
        }
    }
}

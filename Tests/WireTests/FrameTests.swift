import Raft
import Testing
import Wire

@Suite struct FrameTests {
    let payloads: [[UInt8]] = [
        [], [0x42], Array("hello".utf8), (0..<300).map { UInt8(truncatingIfNeeded: $0) }, [], [1, 2, 3, 4],
    ]

    func stream(_ payloads: [[UInt8]], encoder: FrameEncoder = FrameEncoder()) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for payload in payloads { try encoder.append(payload, to: &bytes) }
        return bytes
    }

    @Test func headerIsFourBytesBigEndian() throws {
        #expect(try FrameEncoder().encode([7, 8, 9]) == [0, 0, 0, 3, 7, 8, 9])
        #expect(try FrameEncoder().encode([UInt8](repeating: 0, count: 0x0102_03)).prefix(4) == [0, 1, 2, 3])
        #expect(try FrameEncoder().encode([]) == [0, 0, 0, 0])
    }

    @Test func manyFramesInOneChunk() throws {
        var decoder = FrameDecoder()
        #expect(try decoder.feed(stream(payloads)) == payloads)
        #expect(decoder.isAtFrameBoundary)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func everySplitPointIntoTwoChunks() throws {
        let bytes = try stream(payloads)
        for split in 0...bytes.count {
            var decoder = FrameDecoder()
            var frames = try decoder.feed(bytes[..<split])
            frames += try decoder.feed(bytes[split...])
            #expect(frames == payloads, "split at \(split)")
            #expect(decoder.isAtFrameBoundary)
        }
    }

    @Test func everyPairOfSplitPointsIntoThreeChunks() throws {
        let small: [[UInt8]] = [[1], [], [2, 3, 4, 5, 6, 7, 8, 9, 10], [11, 12]]
        let bytes = try stream(small)
        for first in 0...bytes.count {
            for second in first...bytes.count {
                var decoder = FrameDecoder()
                var frames = try decoder.feed(bytes[..<first])
                frames += try decoder.feed(bytes[first..<second])
                frames += try decoder.feed(bytes[second...])
                #expect(frames == small, "splits at \(first), \(second)")
            }
        }
    }

    @Test func oneByteAtATime() throws {
        let bytes = try stream(payloads)
        var decoder = FrameDecoder()
        var frames: [[UInt8]] = []
        for index in bytes.indices {
            frames += try decoder.feed(bytes[index...index])
            #expect(decoder.bufferedByteCount <= 4 + 300)
        }
        #expect(frames == payloads)
    }

    @Test func randomChunkingsOfALargeStream() throws {
        var random = SeededGenerator(seed: 0xF7A3E)
        let large = [[UInt8](repeating: 0xCD, count: 200_000), randomBytes(&random, maxCount: 1_000), [], [0xEE]]
        let bytes = try stream(large)
        for _ in 0..<50 {
            var decoder = FrameDecoder()
            var frames: [[UInt8]] = []
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + Int.random(in: 1...70_000, using: &random))
                frames += try decoder.feed(bytes[start..<end])
                start = end
            }
            #expect(frames == large)
        }
    }

    @Test func oversizeHeaderIsRejectedBeforeTheBody() throws {
        var decoder = FrameDecoder(maxFrameBytes: 1024)
        #expect(try decoder.feed([0, 0, 4]) == [])
        #expect(decoder.bufferedByteCount == 3)
        // The fourth header byte alone triggers the error: no body was sent.
        #expect(wireError { try decoder.feed([1]) } == .frameTooLarge(offset: 0, declaredBytes: 1025, maxFrameBytes: 1024))
        #expect(decoder.hasFailed)
        guard case .streamFailed = wireError({ try decoder.feed([0]) }) else {
            Issue.record("a failed decoder must stay failed")
            return
        }
    }

    @Test func framesBeforeABadHeaderAreDeliveredThenTheErrorCarriesItsOffset() throws {
        var decoder = FrameDecoder(maxFrameBytes: 10)
        var bytes = try stream([[1, 2], [3]], encoder: FrameEncoder(maxFrameBytes: 10))
        bytes += [0xFF, 0xFF, 0xFF, 0xFF] + [UInt8](repeating: 0, count: 100)
        var frames: [[UInt8]] = []
        let error = wireError { try decoder.feed(bytes[...]) { frames.append($0) } }
        #expect(frames == [[1, 2], [3]])
        #expect(error == .frameTooLarge(offset: 11, declaredBytes: UInt64(UInt32.max), maxFrameBytes: 10))
    }

    @Test func exactlyTheLimitIsAcceptedAndMemoryFollowsArrivingBytes() throws {
        let limit = WireLimits.defaultMaxFrameBytes
        var decoder = FrameDecoder()
        let header: [UInt8] = [UInt8(limit >> 24), UInt8(truncatingIfNeeded: limit >> 16), 0, 0]
        #expect(try decoder.feed(header + [1, 2, 3]) == [])
        #expect(decoder.bufferedByteCount == 3, "only received bytes are buffered")
        let rest = [UInt8](repeating: 9, count: limit - 3)
        let frames = try decoder.feed(rest)
        #expect(frames.count == 1)
        #expect(frames.first?.count == limit)
        #expect(frames.first?.prefix(4) == [1, 2, 3, 9])
    }

    @Test func encoderRefusesOversizePayloadsAndAppendsNothing() throws {
        let encoder = FrameEncoder(maxFrameBytes: 8)
        var buffer: [UInt8] = [0xAA]
        #expect(wireError { try encoder.append([UInt8](repeating: 0, count: 9), to: &buffer) }
                == .frameTooLarge(offset: 1, declaredBytes: 9, maxFrameBytes: 8))
        #expect(buffer == [0xAA])
        #expect((try? encoder.encode([UInt8](repeating: 0, count: 8)))?.count == 12)
    }

    @Test func framedMessagesRoundTrip() throws {
        var random = SeededGenerator(seed: 77)
        let messages = (0..<20).map { _ in randomMessage(&random) }
        var bytes: [UInt8] = []
        for message in messages { bytes += try FrameEncoder().encode(message: message) }
        var decoder = FrameDecoder()
        var decoded: [Message] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + 97)
            for frame in try decoder.feed(bytes[start..<end]) { decoded.append(try Message(wireBytes: frame)) }
            start = end
        }
        #expect(decoded == messages)
    }
}

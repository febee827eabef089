import struct Raft.SeededGenerator
import Testing
import Wire
@testable import RPC

/// What the connection's reader makes of a byte stream: each frame decoded
/// (or the error that closes the connection), in order.
private struct StreamOutcome: Equatable {
    var frames: [RPCFrame] = []
    var error: WireError?
}

/// The reader's path without the socket: `FrameDecoder` then
/// `RPCFrame(wireBytes:)` on every frame, fed in `pieces`.
private func decode(_ pieces: [ArraySlice<UInt8>], maxFrameBytes: Int) -> StreamOutcome {
    var decoder = FrameDecoder(maxFrameBytes: maxFrameBytes)
    var outcome = StreamOutcome()
    for piece in pieces {
        do throws(WireError) {
            try decoder.feed(piece) { payload in
                guard outcome.error == nil else { return }
                do throws(WireError) {
                    outcome.frames.append(try RPCFrame(wireBytes: payload, maxLengthBytes: maxFrameBytes))
                } catch {
                    outcome.error = error
                }
            }
        } catch {
            if outcome.error == nil { outcome.error = error }
        }
        if outcome.error != nil { break }
    }
    return outcome
}

/// Hostile frame streams, bounded and seeded (the malformed-frame test
/// covers the same over real connections, but only a few dozen inputs):
/// decoding never traps, stops at the first typed `WireError`, gives the
/// same frames at every split, and what decodes re-encodes to the same frame.
@Suite("RPC frame fuzz")
struct RPCFrameFuzzTests {
    static let streamCount = 20_000
    static let maxFrameBytes = 4096

    private func randomFrame(_ random: inout SeededGenerator) -> RPCFrame {
        let callID = UInt64.random(in: 0...UInt64.max >> UInt64.random(in: 0...63, using: &random), using: &random)
        let payload = (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        let status = RPCStatus(code: [.ok, .cancelled, .permissionDenied, .protocolViolation].randomElement(using: &random)!,
                               message: "m\(callID % 7)", hint: "h")
        switch Int.random(in: 0..<6, using: &random) {
        case 0: return RPCFrame(callID: callID, .request(method: "shoal.m\(callID % 5)", mode: Bool.random(using: &random) ? .unary : .serverStream,
                                                         deadlineMilliseconds: UInt64.random(in: 0...5000, using: &random),
                                                         windowMessages: UInt32.random(in: 0...64, using: &random), payload: payload))
        case 1: return RPCFrame(callID: callID, .message(payload: payload))
        case 2: return RPCFrame(callID: callID, .end(status))
        case 3: return RPCFrame(callID: callID, .cancel)
        case 4: return RPCFrame(callID: callID, .credit(messages: UInt32.random(in: 0...UInt32.max, using: &random)))
        default: return RPCFrame(callID: 0, .goAway(status))
        }
    }

    private func mutate(_ stream: [UInt8], _ random: inout SeededGenerator) -> [UInt8] {
        var bytes = stream
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            guard !bytes.isEmpty else { break }
            let position = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<5, using: &random) {
            case 0: bytes[position] = UInt8.random(in: 0...255, using: &random)
            case 1: bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 2: bytes.remove(at: position)
            case 3: bytes.insert(UInt8.random(in: 0...255, using: &random), at: position)
            default: bytes = Array(bytes.prefix(position))
            }
        }
        return bytes
    }

    @Test func randomAndMutatedStreamsNeverCrashAndAgreeAtEverySplit() throws {
        let seed: UInt64 = 0x5250_4346_0001
        var random = SeededGenerator(seed: seed)
        let encoder = FrameEncoder(maxFrameBytes: Self.maxFrameBytes)
        var tally = (clean: 0, failed: 0, frames: 0)
        for iteration in 0..<Self.streamCount {
            var stream: [UInt8] = []
            let valid = (0..<Int.random(in: 1...4, using: &random)).map { _ in randomFrame(&random) }
            for frame in valid { try encoder.append(frame.wireEncoded(), to: &stream) }
            let input: [UInt8]
            switch iteration % 4 {
            case 0: input = stream
            case 1: input = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            default: input = mutate(stream, &random)
            }
            let whole = decode([input[...]], maxFrameBytes: Self.maxFrameBytes)
            let context = "seed \(seed) iteration \(iteration): \(input)"
            if iteration % 4 == 0 {
                #expect(whole.frames == valid && whole.error == nil, "a valid stream did not decode: \(context)")
            }
            for frame in whole.frames {
                #expect(try RPCFrame(wireBytes: frame.wireEncoded()) == frame, "re-encode changed a frame: \(context)")
            }
            if let error = whole.error {
                tally.failed += 1
                #expect(error.offset.map { $0 >= 0 && $0 <= input.count } ?? true, "offset out of range in \(error): \(context)")
            } else {
                tally.clean += 1
            }
            tally.frames += whole.frames.count
            let splits = iteration % 50 == 0 ? Array(0...input.count) : [Int.random(in: 0...input.count, using: &random)]
            for split in splits {
                #expect(decode([input[..<split], input[split...]], maxFrameBytes: Self.maxFrameBytes) == whole, "split at \(split): \(context)")
            }
        }
        #expect(tally.failed > Self.streamCount / 4, "\(tally)")
        #expect(tally.frames > Self.streamCount, "\(tally)")
    }

    @Test func oversizedDeclaredLengthsFailBeforeBuffering() {
        var random = SeededGenerator(seed: 0x5250_4346_0002)
        for _ in 0..<2_000 {
            let declared = UInt32.random(in: UInt32(Self.maxFrameBytes + 1)...UInt32.max, using: &random)
            let header: [UInt8] = [UInt8(declared >> 24), UInt8(truncatingIfNeeded: declared >> 16), UInt8(truncatingIfNeeded: declared >> 8), UInt8(truncatingIfNeeded: declared)]
            var decoder = FrameDecoder(maxFrameBytes: Self.maxFrameBytes)
            #expect(throws: WireError.self) { try decoder.feed(header[...]) { _ in } }
            #expect(decoder.bufferedByteCount == 0)
        }
    }
}

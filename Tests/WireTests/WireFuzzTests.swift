import Raft
import RaftWire
import Testing
import Wire

/// Hostile input: none of these may trap or allocate beyond the input. A
/// trap fails the run outright; each loop also checks that whatever does
/// decode re-encodes to a value that decodes identically.
@Suite struct WireFuzzTests {
    static let randomInputCount = 100_000
    static let mutationsPerEncoding = 400

    /// Decodes `bytes` as `T`; on success, checks the value survives a
    /// re-encode. Returns whether it decoded.
    @discardableResult
    func probe<T: WireCodable & Equatable>(_ type: T.Type, _ bytes: [UInt8], _ context: @autoclosure () -> String) -> Bool {
        do {
            let value = try T(wireBytes: bytes)
            let again = try T(wireBytes: value.wireEncoded())
            #expect(again == value, "re-encode changed the value: \(context())")
            return true
        } catch {
            #expect(error.offset.map { $0 >= 0 && $0 <= bytes.count } ?? false, "offset out of range in \(error): \(context())")
            return false
        }
    }

    @Test func randomBytesNeverCrash() throws {
        let seed: UInt64 = 0xF022_0001
        var random = SeededGenerator(seed: seed)
        var decoded = 0
        for iteration in 0..<Self.randomInputCount {
            var bytes = randomBytes(&random, maxCount: 64)
            // Most inputs start like a real message, so that the fuzz gets past
            // the version byte and the body length into the fields.
            if iteration % 4 != 0 {
                bytes.insert(1, at: 0)
                bytes.insert(UInt8(min(bytes.count - 1, 127)), at: 1)
            }
            if probe(Message.self, bytes, "seed \(seed) iteration \(iteration)") { decoded += 1 }
            probe(Sample.self, bytes, "seed \(seed) iteration \(iteration)")
            probe(Configuration.self, bytes, "seed \(seed) iteration \(iteration)")
            probe(Snapshot.self, bytes, "seed \(seed) iteration \(iteration)")
        }
        // Random bytes rarely form a message; mostly they must be refused.
        #expect(decoded < Self.randomInputCount / 10)
    }

    @Test func mutationsOfValidEncodingsNeverCrash() throws {
        let seed: UInt64 = 0xF022_0002
        var random = SeededGenerator(seed: seed)
        for encoding in 0..<120 {
            var message = randomMessage(&random)
            if encoding % 3 == 0 { message.snapshot = randomSnapshot(&random) }
            let valid = message.wireEncoded()
            for mutation in 0..<Self.mutationsPerEncoding {
                var bytes = valid
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    let position = Int.random(in: 0..<bytes.count, using: &random)
                    switch Int.random(in: 0..<6, using: &random) {
                    case 0: bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &random)  // bit flip
                    case 1: bytes[position] = UInt8.random(in: 0...255, using: &random)       // byte replace
                    case 2: bytes[position] = 0xFF                                             // length inflation
                    case 3: bytes.remove(at: position)
                    case 4: bytes.insert(UInt8.random(in: 0...255, using: &random), at: position)
                    default: // splice in a huge varint (2^40 or 2^63), as a length field would be
                        var writer = WireWriter()
                        writer.writeVarint(Bool.random(using: &random) ? 1 << 40 : 1 << 63)
                        bytes.replaceSubrange(position..<min(bytes.count, position + 1), with: writer.bytes)
                    }
                    if bytes.isEmpty { break }
                }
                probe(Message.self, bytes, "seed \(seed) encoding \(encoding) mutation \(mutation)")
            }
        }
    }

    @Test func everyLengthFieldInflatedFailsFast() throws {
        // For each byte of a valid encoding, overwrite it with a varint of
        // 2^40 and decode: wherever it lands on a length or count, decoding
        // must refuse it without allocating (the process would die otherwise).
        var random = SeededGenerator(seed: 0xF022_0003)
        var message = randomMessage(&random, kind: .append)
        message.snapshot = randomSnapshot(&random)
        let valid = message.wireEncoded()
        var inflated = WireWriter()
        inflated.writeVarint(1 << 40)
        var limitErrors = 0
        for position in valid.indices {
            var bytes = valid
            bytes.replaceSubrange(position..<position + 1, with: inflated.bytes)
            do {
                _ = try Message(wireBytes: bytes)
            } catch {
                if case .lengthExceedsLimit(_, 1 << 40, _) = error { limitErrors += 1 }
            }
        }
        #expect(limitErrors > 5, "the inflated varint must have hit several length fields")
    }

    @Test func frameDecoderSurvivesRandomStreams() throws {
        var random = SeededGenerator(seed: 0xF022_0004)
        for _ in 0..<2_000 {
            var decoder = FrameDecoder(maxFrameBytes: 4_096)
            for _ in 0..<8 {
                let chunk = randomBytes(&random, maxCount: 40)
                do {
                    for frame in try decoder.feed(chunk) {
                        _ = try? Message(wireBytes: frame)
                    }
                } catch {
                    #expect(decoder.hasFailed)
                    break
                }
                #expect(decoder.bufferedByteCount <= 4 + 4_096)
            }
        }
    }
}

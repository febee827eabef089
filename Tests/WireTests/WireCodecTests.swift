import Raft
import Testing
import Wire

@Suite struct WireCodecTests {
    // MARK: Known encodings

    @Test func varintsAreLEB128() throws {
        let cases: [(UInt64, [UInt8])] = [
            (0, [0x00]), (1, [0x01]), (127, [0x7F]), (128, [0x80, 0x01]), (300, [0xAC, 0x02]),
            (16_384, [0x80, 0x80, 0x01]),
            (UInt64.max, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
        ]
        for (value, expected) in cases {
            var writer = WireWriter()
            writer.writeVarint(value)
            #expect(writer.bytes == expected, "varint \(value)")
            var reader = WireReader(expected)
            #expect(try reader.readVarint() == value)
            #expect(reader.isAtEnd)
        }
    }

    @Test func signedIntegersAreZigzag() throws {
        let cases: [(Int64, UInt64)] = [(0, 0), (-1, 1), (1, 2), (-2, 3), (2, 4), (Int64.max, UInt64.max - 1), (Int64.min, UInt64.max)]
        for (value, zigzag) in cases {
            var writer = WireWriter()
            writer.writeSigned(value)
            var expected = WireWriter()
            expected.writeVarint(zigzag)
            #expect(writer.bytes == expected.bytes, "zigzag \(value)")
            var reader = WireReader(writer.bytes)
            #expect(try reader.readSigned() == value)
        }
    }

    @Test func fixedWidthIntegersAreBigEndian() throws {
        var writer = WireWriter()
        writer.writeFixed(UInt32(0x0102_0304))
        writer.writeFixed(Int16(-2))
        writer.writeFixed(UInt64.max)
        writer.writeFixed(UInt8(7))
        #expect(writer.bytes == [1, 2, 3, 4, 0xFF, 0xFE] + [UInt8](repeating: 0xFF, count: 8) + [7])
        var reader = WireReader(writer.bytes)
        #expect(try reader.readFixed(UInt32.self) == 0x0102_0304)
        #expect(try reader.readFixed(Int16.self) == -2)
        #expect(try reader.readFixed(UInt64.self) == .max)
        #expect(try reader.readFixed(UInt8.self) == 7)
        #expect(isTruncated(wireError { try reader.readFixed(UInt16.self) }))
    }

    // MARK: Round trips

    @Test func sampleRoundTripsWithEdgeValues() throws {
        var edges = Sample()
        #expect(try Sample(wireBytes: edges.wireEncoded()) == edges, "all defaults")
        edges.unsigned = .max
        edges.signed = .min
        edges.fixed16 = .max
        edges.fixed32 = .max
        edges.fixed64 = .max
        edges.fixedSigned = .min
        edges.flag = true
        edges.bytes = [UInt8](repeating: 0xAB, count: 1 << 20)
        edges.text = "héllo, 世界 🐟 \u{0} \u{10FFFF}"
        edges.names = ["", "a", String(repeating: "ü", count: 10_000)]
        edges.nickname = ""
        edges.child = .init(id: .max, label: "")
        edges.children = [.init(id: 0, label: "zero"), .init(id: 1 << 63, label: "🐠")]
        #expect(try Sample(wireBytes: edges.wireEncoded()) == edges, "maximal values")
    }

    @Test func seededRandomSamplesRoundTrip() throws {
        var random = SeededGenerator(seed: 0x5A17)
        for iteration in 0..<2_000 {
            let sample = Sample.random(&random)
            let bytes = sample.wireEncoded()
            #expect(try Sample(wireBytes: bytes) == sample, "iteration \(iteration)")
            #expect(try Sample(wireBytes: bytes).wireEncoded() == bytes, "canonical, iteration \(iteration)")
        }
    }

    @Test func messageIsVersionThenLengthDelimitedBody() throws {
        let child = Sample.Child(id: 300, label: "é")
        // version 1, body length 5, id 300 (2 bytes), label length 2, é in UTF-8.
        #expect(child.wireEncoded() == [1, 5, 0xAC, 0x02, 2, 0xC3, 0xA9])
    }

    @Test func bodiesOf128BytesOrMoreGetMultiByteLengths() throws {
        for labelLength in [124, 125, 126, 127, 128, 16_381, 16_382, 16_383, 16_384] {
            let child = Sample.Child(id: 1, label: String(repeating: "x", count: labelLength))
            let bytes = child.wireEncoded()
            var reader = WireReader(bytes)
            #expect(try reader.readByte() == 1)
            let bodyLength = try reader.readVarint()
            #expect(bodyLength == UInt64(reader.remainingBytes), "label \(labelLength)")
            #expect(try Sample.Child(wireBytes: bytes) == child)
        }
    }

    // MARK: Versioning and evolution

    struct RecordV1: WireCodable, Equatable {
        var id: UInt64
        var name: String
        init(id: UInt64, name: String) { self.id = id; self.name = name }
        func encode(to writer: inout WireWriter) {
            writer.writeVarint(id)
            writer.writeString(name)
        }
        init(from reader: inout WireReader) throws(WireError) {
            id = try reader.readVarint()
            name = try reader.readString()
        }
    }

    /// Version 1 with a field appended: the compatible kind of change.
    struct RecordV1Extended: WireCodable, Equatable {
        var id: UInt64
        var name: String
        var weight: UInt64 = 100
        init(id: UInt64, name: String, weight: UInt64) { self.id = id; self.name = name; self.weight = weight }
        func encode(to writer: inout WireWriter) {
            writer.writeVarint(id)
            writer.writeString(name)
            writer.writeVarint(weight)
        }
        init(from reader: inout WireReader) throws(WireError) {
            id = try reader.readVarint()
            name = try reader.readString()
            if !reader.isAtEnd { weight = try reader.readVarint() }
        }
    }

    /// An incompatible change: the name became a byte string first.
    struct RecordV2: WireCodable, Equatable {
        static var wireVersion: UInt8 { 2 }
        var key: [UInt8]
        var id: UInt64
        init(key: [UInt8], id: UInt64) { self.key = key; self.id = id }
        func encode(to writer: inout WireWriter) {
            writer.writeBytes(key)
            writer.writeVarint(id)
        }
        init(from reader: inout WireReader) throws(WireError) {
            if reader.messageVersion == 1 {
                id = try reader.readVarint()
                key = Array(try reader.readString().utf8)
            } else {
                key = try reader.readBytes()
                id = try reader.readVarint()
            }
        }
    }

    struct Holder<T: WireCodable & Equatable>: WireCodable, Equatable {
        var items: [T]
        var tail: UInt64
        init(items: [T], tail: UInt64) { self.items = items; self.tail = tail }
        func encode(to writer: inout WireWriter) {
            writer.writeArray(items)
            writer.writeVarint(tail)
        }
        init(from reader: inout WireReader) throws(WireError) {
            items = try reader.readArray(of: T.self)
            tail = try reader.readVarint()
        }
    }

    @Test func olderReaderSkipsAppendedFieldsAtTopLevelAndNested() throws {
        let newer = RecordV1Extended(id: 7, name: "web", weight: 42)
        #expect(try RecordV1(wireBytes: newer.wireEncoded()) == RecordV1(id: 7, name: "web"))

        let holder = Holder(items: [newer, RecordV1Extended(id: 8, name: "db", weight: .max)], tail: 99)
        let old = try Holder<RecordV1>(wireBytes: holder.wireEncoded())
        #expect(old == Holder(items: [RecordV1(id: 7, name: "web"), RecordV1(id: 8, name: "db")], tail: 99),
                "the field after the array is read from the right place")
    }

    @Test func newerReaderDefaultsFieldsAnOlderWriterDidNotSend() throws {
        let older = RecordV1(id: 7, name: "web")
        #expect(try RecordV1Extended(wireBytes: older.wireEncoded()) == RecordV1Extended(id: 7, name: "web", weight: 100))
    }

    @Test func futureVersionIsRejectedWithBothVersions() throws {
        let future = RecordV2(key: [1, 2], id: 3).wireEncoded()
        #expect(wireError { try RecordV1(wireBytes: future) } == .unknownVersion(offset: 0, version: 2, newestSupported: 1))
        #expect(wireError { try RecordV1(wireBytes: [0, 0]) } == .unknownVersion(offset: 0, version: 0, newestSupported: 1))
        #expect(wireError { try RecordV1(wireBytes: [255, 0]) } == .unknownVersion(offset: 0, version: 255, newestSupported: 1))
    }

    @Test func newerReaderStillReadsTheOlderVersion() throws {
        let old = RecordV1(id: 5, name: "key").wireEncoded()
        #expect(try RecordV2(wireBytes: old) == RecordV2(key: Array("key".utf8), id: 5))
        #expect(try RecordV2(wireBytes: RecordV2(key: [9], id: 1).wireEncoded()) == RecordV2(key: [9], id: 1))
    }

    @Test func bytesAfterTheMessageAreTrailingBytes() throws {
        let bytes = RecordV1(id: 1, name: "a").wireEncoded()
        #expect(wireError { try RecordV1(wireBytes: bytes + [0, 0, 0]) } == .trailingBytes(offset: bytes.count, count: 3))
    }

    // MARK: Malformed input

    @Test func overlongAndOverflowingVarintsAreRejected() throws {
        var reader = WireReader([UInt8](repeating: 0x80, count: 11))
        #expect(wireError { try reader.readVarint() } == .varintOverflow(offset: 0))
        // Ten bytes whose last carries more than the 64th bit.
        reader = WireReader([0x00] + [UInt8](repeating: 0xFF, count: 9) + [0x02])
        _ = try? reader.readByte()
        #expect(wireError { try reader.readVarint() } == .varintOverflow(offset: 1))
        reader = WireReader([0x80, 0x00])
        guard case .invalidValue(offset: 0, type: "varint", _) = wireError({ try reader.readVarint() }) else {
            Issue.record("an overlong zero must be rejected")
            return
        }
        reader = WireReader([0x80, 0x80])
        #expect(wireError { try reader.readVarint() } == .truncated(offset: 0, neededBytes: 3, availableBytes: 2))
    }

    @Test func varintsThatDoNotFitTheTargetTypeAreRejected() throws {
        var writer = WireWriter()
        writer.writeVarint(UInt64(UInt32.max) + 1)
        var reader = WireReader(writer.bytes)
        guard case .invalidValue(offset: 0, type: "UInt32", _) = wireError({ try reader.readVarint(as: UInt32.self) }) else {
            Issue.record("2^32 must not fit a UInt32")
            return
        }
        reader = WireReader([0xFF, 0x01])
        #expect(try reader.readVarint(as: UInt8.self) == 255)
    }

    @Test func boolMustBeZeroOrOne() throws {
        var reader = WireReader([1, 0, 2])
        #expect(try reader.readBool() == true)
        #expect(try reader.readBool() == false)
        guard case .invalidValue(offset: 2, type: "Bool", _) = wireError({ try reader.readBool() }) else {
            Issue.record("byte 2 is not a bool")
            return
        }
    }

    @Test func invalidUTF8IsRejectedAtItsOffset() {
        for bad: [UInt8] in [[0xC3, 0x28], [0xFF], [0xED, 0xA0, 0x80], [0xF0, 0x9F, 0x90]] {
            var reader = WireReader([9, UInt8(bad.count)] + bad)
            _ = try? reader.readByte()
            #expect(wireError { try reader.readString() } == .invalidUTF8(offset: 1), "\(bad)")
        }
    }

    @Test func unknownTagsAreTyped() throws {
        enum Color: UInt8 { case red = 0, green = 1 }
        var reader = WireReader([1, 7])
        #expect(try reader.readTag(Color.self) == .green)
        #expect(wireError { try reader.readTag(Color.self) } == .unknownTag(offset: 1, type: "Color", tag: 7))
    }

    @Test func hugeDeclaredLengthsFailBeforeAllocating() throws {
        // 2^40 bytes declared in a 7-byte input: over the limit.
        var writer = WireWriter()
        writer.writeVarint(1 << 40)
        var reader = WireReader(writer.bytes)
        #expect(wireError { try reader.readBytes() } == .lengthExceedsLimit(offset: 0, declared: 1 << 40, limit: WireLimits.defaultMaxFrameBytes))
        reader = WireReader(writer.bytes)
        #expect(wireError { try reader.readString() } == .lengthExceedsLimit(offset: 0, declared: 1 << 40, limit: WireLimits.defaultMaxFrameBytes))
        reader = WireReader(writer.bytes)
        #expect(wireError { try reader.readArray(of: Sample.Child.self) } == .lengthExceedsLimit(offset: 0, declared: 1 << 40, limit: WireLimits.defaultMaxFrameBytes))

        // Within the limit but beyond the input: truncated, before the array
        // is reserved (15 million elements would be hundreds of MiB).
        writer = WireWriter()
        writer.writeVarint(15_000_000)
        reader = WireReader(writer.bytes + [1, 2, 3])
        #expect(wireError { try reader.readArray(of: Sample.Child.self) } == .truncated(offset: 0, neededBytes: 15_000_000, availableBytes: 3))

        // A count that only the per-element minimum exposes.
        writer = WireWriter()
        writer.writeVarint(4)
        reader = WireReader(writer.bytes + [UInt8](repeating: 0, count: 31))
        #expect(isTruncated(wireError { try reader.readArray(minimumElementBytes: 8) { (r: inout WireReader) throws(WireError) in try r.readFixed(UInt64.self) } }))

        // A configured limit smaller than the input.
        writer = WireWriter()
        writer.writeBytes([UInt8](repeating: 1, count: 100))
        reader = WireReader(writer.bytes, maxLengthBytes: 99)
        #expect(wireError { try reader.readBytes() } == .lengthExceedsLimit(offset: 0, declared: 100, limit: 99))
    }

    @Test func nestedBodyCannotReadPastItsLength() throws {
        // A child whose body length (2) is shorter than its fields need.
        let bytes: [UInt8] = [1, 4, 2, 5, 3, 0x61]
        #expect(wireError { try Sample.Child(wireBytes: [1, 2, 5, 3]) } == .truncated(offset: 3, neededBytes: 3, availableBytes: 0))
        #expect(try Sample.Child(wireBytes: [1, 3, 5, 1, 0x61]) == Sample.Child(id: 5, label: "a"))
        #expect(isTruncated(wireError { try Sample.Child(wireBytes: bytes) }))
    }

    @Test func everyTruncationOfAValidEncodingIsTruncated() throws {
        var random = SeededGenerator(seed: 0x7E57)
        for _ in 0..<40 {
            let bytes = Sample.random(&random).wireEncoded()
            for length in 0..<bytes.count {
                let error = wireError { try Sample(wireBytes: Array(bytes[..<length])) }
                #expect(isTruncated(error), "prefix \(length) of \(bytes.count): \(String(describing: error))")
            }
        }
    }

    @Test func errorsSayWhatToDo() throws {
        let error = WireError.unknownVersion(offset: 0, version: 3, newestSupported: 1)
        #expect(error.description.contains("upgrade"))
        #expect(error.offset == 0)
        #expect(WireError.lengthExceedsLimit(offset: 4, declared: 1 << 40, limit: 16).description.contains("1099511627776"))
    }
}

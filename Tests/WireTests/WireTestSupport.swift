import Raft
import Testing
import Wire

/// Runs `body` and returns the `WireError` it threw, or nil if it succeeded.
/// (Closures infer untyped `throws`, so the error is cast back; the APIs
/// themselves are `throws(WireError)`, which the compiler enforces.)
func wireError<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> WireError? {
    do {
        _ = try body()
        return nil
    } catch let error as WireError {
        return error
    } catch {
        Issue.record("expected a WireError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Whether `error` is `.truncated`, whatever its payload.
func isTruncated(_ error: WireError?) -> Bool {
    if case .truncated = error { return true }
    return false
}

/// A test type that uses every field kind the codec has.
struct Sample: WireCodable, Equatable {
    var unsigned: UInt64 = 0
    var signed: Int64 = 0
    var fixed16: UInt16 = 0
    var fixed32: UInt32 = 0
    var fixed64: UInt64 = 0
    var fixedSigned: Int32 = 0
    var flag = false
    var bytes: [UInt8] = []
    var text = ""
    var names: [String] = []
    var nickname: String? = nil
    var child: Child? = nil
    var children: [Child] = []

    struct Child: WireCodable, Equatable {
        var id: UInt64
        var label: String

        func encode(to writer: inout WireWriter) {
            writer.writeVarint(id)
            writer.writeString(label)
        }

        init(id: UInt64, label: String) {
            self.id = id
            self.label = label
        }

        init(from reader: inout WireReader) throws(WireError) {
            id = try reader.readVarint()
            label = try reader.readString()
        }
    }

    init() {}

    func encode(to writer: inout WireWriter) {
        writer.writeVarint(unsigned)
        writer.writeSigned(signed)
        writer.writeFixed(fixed16)
        writer.writeFixed(fixed32)
        writer.writeFixed(fixed64)
        writer.writeFixed(fixedSigned)
        writer.writeBool(flag)
        writer.writeBytes(bytes)
        writer.writeString(text)
        writer.writeArray(names) { writer, name in writer.writeString(name) }
        writer.writeOptional(nickname) { writer, name in writer.writeString(name) }
        writer.writeOptional(child)
        writer.writeArray(children)
    }

    init(from reader: inout WireReader) throws(WireError) {
        unsigned = try reader.readVarint()
        signed = try reader.readSigned()
        fixed16 = try reader.readFixed(UInt16.self)
        fixed32 = try reader.readFixed(UInt32.self)
        fixed64 = try reader.readFixed(UInt64.self)
        fixedSigned = try reader.readFixed(Int32.self)
        flag = try reader.readBool()
        bytes = try reader.readBytes()
        text = try reader.readString()
        names = try reader.readArray { (reader: inout WireReader) throws(WireError) -> String in try reader.readString() }
        nickname = try reader.readOptional { (reader: inout WireReader) throws(WireError) -> String in try reader.readString() }
        child = try reader.readOptional(Child.self)
        children = try reader.readArray(of: Child.self)
    }

    static func random(_ random: inout SeededGenerator) -> Sample {
        var sample = Sample()
        sample.unsigned = randomUInt64(&random)
        sample.signed = Int64(bitPattern: randomUInt64(&random))
        sample.fixed16 = UInt16.random(in: .min ... .max, using: &random)
        sample.fixed32 = UInt32.random(in: .min ... .max, using: &random)
        sample.fixed64 = randomUInt64(&random)
        sample.fixedSigned = Int32.random(in: .min ... .max, using: &random)
        sample.flag = Bool.random(using: &random)
        sample.bytes = randomBytes(&random, maxCount: 300)
        sample.text = randomString(&random)
        sample.names = (0..<Int.random(in: 0...4, using: &random)).map { _ in randomString(&random) }
        sample.nickname = Bool.random(using: &random) ? randomString(&random) : nil
        sample.child = Bool.random(using: &random) ? Child(id: randomUInt64(&random), label: randomString(&random)) : nil
        sample.children = (0..<Int.random(in: 0...3, using: &random)).map { _ in
            Child(id: randomUInt64(&random), label: randomString(&random))
        }
        return sample
    }
}

/// Edge values more often than uniform draws would give them.
func randomUInt64(_ random: inout SeededGenerator) -> UInt64 {
    switch Int.random(in: 0..<6, using: &random) {
    case 0: return [0, 1, 127, 128, 255, 16_383, 16_384, UInt64(UInt32.max), UInt64.max - 1, UInt64.max].randomElement(using: &random)!
    case 1, 2: return UInt64.random(in: 0..<200, using: &random)
    case 3: return UInt64.random(in: 0..<(1 << 32), using: &random)
    default: return random.next()
    }
}

func randomBytes(_ random: inout SeededGenerator, maxCount: Int) -> [UInt8] {
    (0..<Int.random(in: 0...maxCount, using: &random)).map { _ in UInt8.random(in: 0 ... 255, using: &random) }
}

func randomString(_ random: inout SeededGenerator) -> String {
    let pieces = ["", "a", "web", "é", "日本語", "🐟🐠", "\u{0}", "zürich", "Ω", "tab\there", "\u{10FFFF}"]
    return (0..<Int.random(in: 0...4, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
}

func randomConfiguration(_ random: inout SeededGenerator) -> Configuration {
    let voters = (0..<Int.random(in: 0...5, using: &random)).map { _ in UInt64.random(in: 1...9, using: &random) }
    let learners = (0..<Int.random(in: 0...3, using: &random)).map { _ in
        Bool.random(using: &random) ? UInt64.random(in: 1...12, using: &random) : UInt64.max - UInt64.random(in: 0...3, using: &random)
    }
    return Configuration(voters: voters, learners: learners)
}

func randomEntry(_ random: inout SeededGenerator) -> Entry {
    Entry(term: randomUInt64(&random), index: randomUInt64(&random),
          kind: Bool.random(using: &random) ? .normal : .configuration,
          data: randomBytes(&random, maxCount: 200))
}

func randomSnapshot(_ random: inout SeededGenerator) -> Snapshot {
    Snapshot(metadata: SnapshotMetadata(index: randomUInt64(&random), term: randomUInt64(&random),
                                        configuration: randomConfiguration(&random)),
             data: randomBytes(&random, maxCount: 500))
}

func randomMessage(_ random: inout SeededGenerator, kind: Message.Kind? = nil) -> Message {
    Message(
        kind: kind ?? Message.Kind.allCases.randomElement(using: &random)!,
        from: randomUInt64(&random), to: randomUInt64(&random), term: randomUInt64(&random),
        logTerm: randomUInt64(&random), index: randomUInt64(&random),
        entries: (0..<Int.random(in: 0...6, using: &random)).map { _ in randomEntry(&random) },
        commit: randomUInt64(&random), reject: Bool.random(using: &random), rejectHint: randomUInt64(&random),
        snapshot: Int.random(in: 0..<3, using: &random) == 0 ? randomSnapshot(&random) : nil,
        readID: randomUInt64(&random), context: randomBytes(&random, maxCount: 16))
}

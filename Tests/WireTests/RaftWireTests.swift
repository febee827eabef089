import Raft
import RaftWire
import Testing
import Wire

@Suite struct RaftWireTests {
    @Test(arguments: Message.Kind.allCases)
    func everyKindRoundTripsWithEntriesAndSnapshot(kind: Message.Kind) throws {
        let configuration = Configuration(voters: [1, 2, 3], learners: [4, UInt64.max])
        let message = Message(
            kind: kind, from: 1, to: UInt64.max, term: 1 << 40, logTerm: 6, index: UInt64.max - 1,
            entries: [
                Entry(term: 0, index: 0),
                Entry(term: 7, index: 8, data: [UInt8](repeating: 0x5A, count: 100)),
                Entry(term: .max, index: .max, kind: .configuration, data: configuration.encoded()),
                Entry(term: 9, index: 10, data: [UInt8](repeating: 1, count: 70_000)),
            ],
            commit: 5, reject: true, rejectHint: 3,
            snapshot: Snapshot(metadata: SnapshotMetadata(index: 100, term: 4, configuration: configuration),
                               data: Array("état 🐟".utf8)),
            readID: .max, context: Array("transfer".utf8))
        let bytes = message.wireEncoded()
        #expect(try Message(wireBytes: bytes) == message)
        #expect(bytes.first == 1, "version byte")

        let bare = Message(kind: kind, from: 0, to: 0, term: 0)
        #expect(try Message(wireBytes: bare.wireEncoded()) == bare)
        #expect(bare.wireEncoded().count == 2 + 13, "version and body length, then one byte for each of the 13 fields")
    }

    @Test func everyOtherTypeRoundTripsWithEdgeValues() throws {
        for state in [HardState.empty, HardState(term: .max, vote: .max, commit: .max), HardState(term: 3, vote: 2, commit: 1)] {
            #expect(try HardState(wireBytes: state.wireEncoded()) == state)
        }
        for configuration in [Configuration.empty, Configuration(voters: [1]), Configuration(voters: [.max, 1, 2], learners: [7, 8]),
                              Configuration(voters: Array(1...1_000), learners: Array(1_001...2_000))] {
            #expect(try Configuration(wireBytes: configuration.wireEncoded()) == configuration)
        }
        for entry in [Entry(term: 0, index: 0), Entry(term: .max, index: .max, kind: .configuration, data: [0]),
                      Entry(term: 1, index: 2, data: [UInt8](repeating: 0xFF, count: 1 << 20))] {
            #expect(try Entry(wireBytes: entry.wireEncoded()) == entry)
        }
        let metadata = SnapshotMetadata(index: .max, term: 0, configuration: Configuration(voters: [2, 3], learners: [1]))
        #expect(try SnapshotMetadata(wireBytes: metadata.wireEncoded()) == metadata)
        for data in [[], [UInt8](repeating: 3, count: 2 << 20)] {
            let snapshot = Snapshot(metadata: metadata, data: data)
            #expect(try Snapshot(wireBytes: snapshot.wireEncoded()) == snapshot)
        }
    }

    @Test func seededRandomMessagesRoundTrip() throws {
        var random = SeededGenerator(seed: 0xDEC0DE)
        for iteration in 0..<3_000 {
            let message = randomMessage(&random)
            let bytes = message.wireEncoded()
            #expect(try Message(wireBytes: bytes) == message, "seed 0xDEC0DE iteration \(iteration)")
        }
    }

    @Test func unknownKindsAreTypedErrors() throws {
        var bytes = Message(kind: .append, from: 1, to: 2, term: 3).wireEncoded()
        // version, body length, then the kind tag at offset 2.
        #expect(bytes[2] == Message.Kind.append.rawValue)
        bytes[2] = 12
        #expect(wireError { try Message(wireBytes: bytes) } == .unknownTag(offset: 2, type: "Kind", tag: 12))

        var entryBytes = Entry(term: 1, index: 1).wireEncoded()
        entryBytes[4] = 2
        #expect(wireError { try Entry(wireBytes: entryBytes) } == .unknownTag(offset: 4, type: "Kind", tag: 2))
    }

    @Test func hugeEntryCountsFailBeforeAllocation() throws {
        // A message that claims 2^40 entries, then 10 million (under the
        // frame limit but far more than its bytes could hold).
        for (count, expectLimit) in [(UInt64(1) << 40, true), (10_000_000, false)] {
            var writer = WireWriter()
            writer.writeTag(Message.Kind.append)
            for _ in 0..<5 { writer.writeVarint(1) }
            let countOffset = 2 + writer.count
            writer.writeVarint(count)
            writer.writeFixed(UInt64.max)
            var message: [UInt8] = [1]
            message.append(UInt8(writer.count))
            message += writer.bytes
            let error = wireError { try Message(wireBytes: message) }
            if expectLimit {
                #expect(error == .lengthExceedsLimit(offset: countOffset, declared: count, limit: WireLimits.defaultMaxFrameBytes))
            } else {
                #expect(error == .truncated(offset: countOffset, neededBytes: Int(count) * RaftWireLimits.minimumEntryBytes,
                                            availableBytes: 8))
            }
        }
    }

    @Test func nonCanonicalConfigurationsAreRejected() throws {
        func configurationBytes(voters: [UInt64], learners: [UInt64]) -> [UInt8] {
            var writer = WireWriter()
            writer.writeArray(voters) { $0.writeVarint($1) }
            writer.writeArray(learners) { $0.writeVarint($1) }
            return [1, UInt8(writer.count)] + writer.bytes
        }
        #expect(try Configuration(wireBytes: configurationBytes(voters: [1, 3], learners: [2])) == Configuration(voters: [1, 3], learners: [2]))
        for (voters, learners, reason) in [([0], [], "id 0"), ([2, 1], [], "descending"), ([1, 1], [], "duplicate"),
                                           ([1, 2], [2], "voter and learner"), ([1], [3, 3], "duplicate learner")] as [([UInt64], [UInt64], String)] {
            guard case .invalidValue(_, "Configuration", _) = wireError({ try Configuration(wireBytes: configurationBytes(voters: voters, learners: learners)) }) else {
                Issue.record("\(reason) must be rejected")
                continue
            }
        }
        var writer = WireWriter()
        writer.writeVarint(UInt64(RaftWireLimits.maxConfigurationMembers + 1))
        writer.writeBytes([UInt8](repeating: 1, count: 20_000))
        var reader = WireReader(writer.bytes)
        #expect(wireError { try Configuration(from: &reader) }
                == .lengthExceedsLimit(offset: 0, declared: UInt64(RaftWireLimits.maxConfigurationMembers + 1), limit: RaftWireLimits.maxConfigurationMembers))
    }

    @Test func everyTruncationOfAMessageIsTruncated() throws {
        var random = SeededGenerator(seed: 0x7A1)
        for iteration in 0..<30 {
            var message = randomMessage(&random)
            if iteration % 2 == 0 { message.snapshot = randomSnapshot(&random) }
            let bytes = message.wireEncoded()
            for length in 0..<bytes.count {
                let error = wireError { try Message(wireBytes: Array(bytes[..<length])) }
                #expect(isTruncated(error), "prefix \(length) of \(bytes.count): \(String(describing: error))")
            }
            // And every truncation of the body alone, where nested lengths
            // are all that stands between the reader and the end.
            var body = WireWriter()
            message.encode(to: &body)
            for length in 0..<body.count {
                var reader = WireReader(Array(body.bytes[..<length]))
                let error = wireError { try Message(from: &reader) }
                #expect(isTruncated(error), "body prefix \(length) of \(body.count): \(String(describing: error))")
            }
        }
    }
}

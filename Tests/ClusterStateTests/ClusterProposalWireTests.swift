import Foundation
import Testing
@testable import ClusterState

@Suite("ClusterProposal binary log format")
struct ClusterProposalWireTests {
    static let proposals: [ClusterProposal] = [
        ClusterProposal(timeMilliseconds: 1_700_000_000_123, command: .createConfig(id: "c1", spec: .init(name: "app.conf", labels: ["b": "2", "a": "1"], data: Array(repeating: 0x61, count: 256)))),
        ClusterProposal(timeMilliseconds: -5, command: .createSecret(id: "s1", spec: .init(name: "key", data: [0, 255, 7]))),
        ClusterProposal(timeMilliseconds: 0, command: .removeConfig(id: "c1")),
        ClusterProposal(timeMilliseconds: 9, command: .removeSecret(id: "s1")),
        // Commands without a binary body travel as JSON inside the binary envelope.
        ClusterProposal(timeMilliseconds: 42, command: .createService(id: "web", spec: Service.Spec(name: "web", task: TaskTemplate(image: "busybox")))),
        ClusterProposal(timeMilliseconds: 43, command: .batch([.removeConfig(id: "c2"), .removeSecret(id: "s2")])),
    ]

    @Test("every command round-trips, in the binary format (version 2)")
    func roundTrip() throws {
        for proposal in Self.proposals {
            let bytes = proposal.encoded()
            #expect(bytes.first == 2, "binary entries start with their format version")
            #expect(try ClusterProposal(encoded: bytes) == proposal)
            #expect(proposal.encoded() == bytes, "encoding is deterministic (labels sorted)")
        }
    }

    @Test("a config is far smaller than its JSON entry")
    func binaryIsCompact() throws {
        let proposal = Self.proposals[0]
        let json = try JSONEncoder().encode(proposal)
        #expect(proposal.encoded().count < 300)
        #expect(proposal.encoded().count * 4 < json.count * 3)
    }

    @Test("JSON entries written by earlier managers (format 1) still apply")
    func jsonEntriesDecode() throws {
        for proposal in Self.proposals {
            var old = proposal
            old.formatVersion = 1
            let json = Array(try JSONEncoder().encode(old))
            #expect(json.first == UInt8(ascii: "{"))
            #expect(try ClusterProposal(encoded: json).command == proposal.command)
        }
    }

    @Test("entries from a newer format, truncated or corrupt ones are refused with undecodableCommand")
    func badEntries() {
        let good = Self.proposals[0].encoded()
        var newer = good
        newer[0] = 3
        let small = ClusterProposal(timeMilliseconds: 1, command: .removeConfig(id: "c1")).encoded()
        var badTag = small
        badTag[3] = 0x7f  // version, body length, time, then the tag
        var badID = small
        badID[badID.count - 1] = UInt8(ascii: "!")
        for bytes in [newer, badTag, badID, Array(good.dropLast()), [], [2]] {
            #expect {
                _ = try ClusterProposal(encoded: bytes)
            } throws: { error in
                if case .undecodableCommand = error as? ClusterStateError { return true }
                return false
            }
        }
    }

    @Test("applying a binary entry is the same as applying its command")
    func applyBinaryEntry() throws {
        var fromEntry = ClusterState()
        try fromEntry.apply(entryData: Self.proposals[0].encoded(), index: 1)
        var direct = ClusterState()
        try direct.apply(Self.proposals[0].command, context: ApplyContext(index: 1, timeMilliseconds: Self.proposals[0].timeMilliseconds))
        #expect(fromEntry == direct)
    }
}

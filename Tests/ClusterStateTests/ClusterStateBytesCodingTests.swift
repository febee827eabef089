import Foundation
import Testing
@testable import ClusterState

@Suite("Config and secret bytes in log entries and snapshots")
struct ClusterStateBytesCodingTests {
    @Test("bytes are written as one base64 string and read back exactly")
    func base64RoundTrip() throws {
        let spec = Config.Spec(name: "cfg", labels: ["a": "b"], data: Array(0...255))
        let json = try JSONEncoder().encode(spec)
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(object["data"] as? String == Data(Array(0...255) as [UInt8]).base64EncodedString())
        #expect(try JSONDecoder().decode(Config.Spec.self, from: json) == spec)
        let proposal = ClusterProposal(timeMilliseconds: 7, command: .createSecret(id: "s", spec: .init(name: "s", data: [1, 2, 3])))
        #expect(try ClusterProposal(encoded: proposal.encoded()) == proposal)
    }

    @Test("entries and snapshots written with arrays of numbers still decode")
    func arraysOfNumbersStillDecode() throws {
        let config = try JSONDecoder().decode(Config.Spec.self, from: Data(#"{"name": "cfg", "labels": {}, "data": [1, 2, 255]}"#.utf8))
        #expect(config.data == [1, 2, 255])
        let secret = try JSONDecoder().decode(Secret.Spec.self, from: Data(#"{"name": "s", "labels": {"k": "v"}, "data": []}"#.utf8))
        #expect(secret.data.isEmpty && secret.labels == ["k": "v"])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Config.Spec.self, from: Data(#"{"name": "cfg", "labels": {}, "data": "not base64!"}"#.utf8))
        }
    }
}

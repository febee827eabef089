@testable import Daemon
import Foundation
import Testing

/// Request bodies decoded strictly, and the shapes it remembers as checked.
@Suite("Strict JSON request bodies")
struct StrictJSONTests {
    struct Probe: Codable, Equatable {
        var name: String
        var size: Int?
        var labels: [String: String]?
        var items: [Item]?
        struct Item: Codable, Equatable { var id: Int }
    }

    func decode(_ text: String) throws(APIError) -> Probe {
        try StrictJSON.decode(Probe.self, from: Array(text.utf8))
    }

    func refusal(_ text: String) -> String? {
        do {
            _ = try decode(text)
            return nil
        } catch {
            return error.message
        }
    }

    @Test("an unknown field is refused however often inputs of a checked shape came before, a null one stays ignored, and nested ones are named")
    func unknownFieldsAreRefusedAfterCheckedShapes() throws {
        for _ in 0..<3 {
            #expect(try decode(#"{"name": "a", "size": 1, "labels": {"k": "v"}, "items": [{"id": 1}]}"#) ==
                    Probe(name: "a", size: 1, labels: ["k": "v"], items: [.init(id: 1)]))
            #expect(try decode(#"{"name": "b", "size": 2, "labels": {"k": "w"}, "items": [{"id": 2}]}"#).name == "b")
        }
        // Each differs from a checked shape by one key or by a null.
        #expect(refusal(#"{"name": "a", "size": 1, "extra": 1}"#) == "unknown field 'extra'")
        #expect(try decode(#"{"name": "a", "bogus": null}"#).name == "a")
        #expect(try decode(#"{"name": "a", "bogus": null}"#).name == "a")
        #expect(refusal(#"{"name": "a", "bogus": 1}"#) == "unknown field 'bogus'")
        #expect(refusal(#"{"name": "a", "items": [{"id": 1}, {"id": 2, "x": 3}]}"#) == "unknown field 'items[1].x'")
        #expect(refusal(#"{"name": "a", "items": [{"id": 1, "x": 3}]}"#) == "unknown field 'items[0].x'")
        #expect(try decode(#"{"name": "a", "labels": {"x": "3"}}"#).labels == ["x": "3"], "a dictionary's keys are data")
    }

    @Test("key shapes tell structure from keys that look like structure")
    func keyShapesAreUnambiguous() throws {
        func shape(_ text: String) throws -> String { StrictJSON.keyShape(of: try JSONSerialization.jsonObject(with: Data(text.utf8))) }
        #expect(try shape(#"{"a": 1, "b": null}"#) == "{1#a:v1#b:n}")
        #expect(try shape(#"{"a": {"b": 1}}"#) != shape(#"{"a:{1#b": 1}"#))
        #expect(try shape(#"{"a": [1, {"c": 2}]}"#) != shape(#"{"a": [1, 2]}"#))
        #expect(try shape(#"{"a": 1}"#) == shape(#"{"a": "text"}"#))
    }
}

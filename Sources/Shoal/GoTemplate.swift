import Foundation

/// The subset of Go's text/template that `docker inspect --format` users
/// reach for: text with `{{.Field.Path}}`, `{{.}}`, `{{json .Path}}` and
/// `{{index .Map "key"}}`, evaluated over a JSON document. Values print as
/// Go prints them (`[a b]`, `map[k:v]`, `<no value>`).
struct GoTemplate {
    enum Part {
        case text(String)
        case action(function: String?, path: [String], key: String?)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let parts: [Part]

    init(_ source: String) throws {
        var parts: [Part] = []
        var rest = Substring(source)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { parts.append(.text(String(rest[..<open.lowerBound]))) }
            guard let close = rest.range(of: "}}", range: open.upperBound..<rest.endIndex) else {
                throw Failure(description: "template: unclosed action (missing }})")
            }
            parts.append(try Self.action(rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)))
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        self.parts = parts
    }

    private static func action(_ text: String) throws -> Part {
        let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        func path(_ word: String) throws -> [String] {
            guard word.hasPrefix(".") else {
                throw Failure(description: "template: '\(text)' is not supported: use {{.Field.Path}}, {{json .Path}} or {{index .Path \"key\"}}")
            }
            return word == "." ? [] : word.dropFirst().split(separator: ".").map(String.init)
        }
        switch words.count {
        case 1: return .action(function: nil, path: try path(words[0]), key: nil)
        case 2 where ["json", "upper", "lower", "len"].contains(words[0]):
            return .action(function: words[0], path: try path(words[1]), key: nil)
        case 3 where words[0] == "index":
            return .action(function: "index", path: try path(words[1]), key: words[2].trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
        default:
            throw Failure(description: "template: '\(text)' is not supported: use {{.Field.Path}}, {{json .Path}} or {{index .Path \"key\"}}")
        }
    }

    /// Renders over `document` (the JSON of what inspect prints).
    func render(_ document: JSONValue) throws -> String {
        var output = ""
        for part in parts {
            switch part {
            case .text(let text):
                output += text
            case .action(let function, let path, let key):
                var value = document
                for (depth, field) in path.enumerated() {
                    guard case .object(let object) = value else {
                        throw Failure(description: "template: can't evaluate field \(field) in .\(path.prefix(depth).joined(separator: "."))")
                    }
                    guard let next = object[field] else {
                        throw Failure(description: "template: can't evaluate field \(field): the fields here are \(object.keys.sorted().joined(separator: ", "))")
                    }
                    value = next
                }
                switch function {
                case "json": output += value.json
                case "upper": output += value.goText.uppercased()
                case "lower": output += value.goText.lowercased()
                case "len":
                    switch value {
                    case .array(let array): output += "\(array.count)"
                    case .object(let object): output += "\(object.count)"
                    default: output += "\(value.goText.count)"
                    }
                case "index":
                    switch value {
                    case .object(let object): output += object[key ?? ""]?.goText ?? "<no value>"
                    case .array(let array):
                        if let position = Int(key ?? ""), array.indices.contains(position) { output += array[position].goText } else { output += "<no value>" }
                    default: output += "<no value>"
                    }
                default:
                    output += value.goText
                }
            }
        }
        return output
    }
}

/// A JSON document that keeps booleans apart from numbers (Foundation's
/// `JSONSerialization` on Linux does not), for templates.
indirect enum JSONValue: Decodable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    /// How Go's fmt prints the value.
    var goText: String {
        switch self {
        case .null: return "<no value>"
        case .bool(let value): return value ? "true" : "false"
        case .integer(let value): return "\(value)"
        case .number(let value): return "\(value)"
        case .string(let value): return value
        case .array(let values): return "[" + values.map(\.goText).joined(separator: " ") + "]"
        case .object(let object): return "map[" + object.keys.sorted().map { "\($0):\(object[$0]!.goText)" }.joined(separator: " ") + "]"
        }
    }

    var json: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .integer(let value): return "\(value)"
        case .number(let value): return "\(value)"
        case .string(let value):
            // Go's encoding/json leaves "/" alone: `{"80/tcp":...}`, not `80\/tcp`.
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes
            let data = (try? encoder.encode(value)) ?? Data()
            return String(decoding: data, as: UTF8.self)
        case .array(let values): return "[" + values.map(\.json).joined(separator: ",") + "]"
        case .object(let object):
            return "{" + object.keys.sorted().map { JSONValue.string($0).json + ":" + object[$0]!.json }.joined(separator: ",") + "}"
        }
    }
}

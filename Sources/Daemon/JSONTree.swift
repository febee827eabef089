/// A parsed JSON value (RFC 8259), for reading the few small lines of a
/// stream without `JSONDecoder`, whose first use in a process looks up type
/// metadata and conformances by name (most of what decoding the CLI's
/// `container run` stream cost). What `JSONDecoder` refuses, this refuses:
/// malformed text, raw control characters in strings, lone surrogates,
/// anything after the value. What it takes beyond RFC 8259, this takes: one
/// trailing comma in an object or array.
enum JSONTree: Equatable {
    case null
    case bool(Bool)
    /// The number's text as written (checked against the JSON grammar).
    case number(String)
    case string(String)
    case array([JSONTree])
    /// Members in input order; a repeated key's last value wins in ``subscript(_:)``.
    case object([Member])

    /// A struct, not a tuple: a tuple's type metadata is made at run time.
    struct Member: Equatable {
        var key: String
        var value: JSONTree
    }

    /// The member `key` of an object; nil when absent or not an object.
    subscript(_ key: String) -> JSONTree? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.key == key }?.value
    }

    static func == (left: JSONTree, right: JSONTree) -> Bool {
        switch (left, right) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)), (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        default: return false
        }
    }

    /// Nesting deeper than this is refused (the parser recurses).
    static let maxDepth = 512

    /// The value `text` holds, or nil when it is not exactly one JSON value.
    static func parse(_ text: String) -> JSONTree? {
        var parser = Parser(bytes: Array(text.utf8))
        guard let value = parser.value(depth: 0) else { return nil }
        parser.skipWhitespace()
        return parser.index == parser.bytes.count ? value : nil
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        mutating func value(depth: Int) -> JSONTree? {
            guard depth < JSONTree.maxDepth else { return nil }
            skipWhitespace()
            switch current {
            case UInt8(ascii: "{"): return object(depth: depth)
            case UInt8(ascii: "["): return array(depth: depth)
            case UInt8(ascii: "\""): return string().map(JSONTree.string)
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default: return number()
            }
        }

        mutating func literal(_ word: String, _ value: JSONTree) -> JSONTree? {
            let expected = Array(word.utf8)
            guard bytes.count - index >= expected.count, Array(bytes[index..<index + expected.count]) == expected else { return nil }
            index += expected.count
            return value
        }

        mutating func object(depth: Int) -> JSONTree? {
            index += 1  // {
            var members: [Member] = []
            if closes(UInt8(ascii: "}")) { return .object(members) }
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\""), let key = string() else { return nil }
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { return nil }
                index += 1
                guard let member = value(depth: depth + 1) else { return nil }
                members.append(Member(key: key, value: member))
                guard let ended = closesAfterItem(UInt8(ascii: "}")) else { return nil }
                if ended { return .object(members) }
            }
        }

        mutating func array(depth: Int) -> JSONTree? {
            index += 1  // [
            var elements: [JSONTree] = []
            if closes(UInt8(ascii: "]")) { return .array(elements) }
            while true {
                guard let element = value(depth: depth + 1) else { return nil }
                elements.append(element)
                guard let ended = closesAfterItem(UInt8(ascii: "]")) else { return nil }
                if ended { return .array(elements) }
            }
        }

        /// Takes `closing` (after whitespace) if it is next.
        mutating func closes(_ closing: UInt8) -> Bool {
            skipWhitespace()
            guard current == closing else { return false }
            index += 1
            return true
        }

        /// After a member or an element: true when `closing` ends the object
        /// or array (one trailing comma before it taken, as JSONDecoder takes
        /// it), false after a comma, nil when neither follows.
        mutating func closesAfterItem(_ closing: UInt8) -> Bool? {
            if closes(closing) { return true }
            guard current == UInt8(ascii: ",") else { return nil }
            index += 1
            return closes(closing)
        }

        /// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`
        mutating func number() -> JSONTree? {
            let start = index
            if current == UInt8(ascii: "-") { index += 1 }
            if current == UInt8(ascii: "0") {
                index += 1
            } else {
                guard digits() > 0 else { return nil }
            }
            if current == UInt8(ascii: ".") {
                index += 1
                guard digits() > 0 else { return nil }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                index += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { return nil }
            }
            return .number(String(decoding: bytes[start..<index], as: UTF8.self))
        }

        mutating func digits() -> Int {
            let start = index
            while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { index += 1 }
            return index - start
        }

        /// A string from its opening quote; nil if malformed.
        mutating func string() -> String? {
            index += 1  // "
            var output: [UInt8] = []
            while let byte = current {
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: output, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let escaped = current else { return nil }
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escaped)
                    case UInt8(ascii: "b"): output.append(0x08)
                    case UInt8(ascii: "f"): output.append(0x0C)
                    case UInt8(ascii: "n"): output.append(0x0A)
                    case UInt8(ascii: "r"): output.append(0x0D)
                    case UInt8(ascii: "t"): output.append(0x09)
                    case UInt8(ascii: "u"):
                        guard let scalar = unicodeEscape() else { return nil }
                        output += Array(String(Character(scalar)).utf8)
                    default: return nil
                    }
                case 0..<0x20:
                    return nil  // control characters must be escaped
                default:
                    output.append(byte)
                }
            }
            return nil  // no closing quote
        }

        /// The scalar of `\uXXXX` (after its `\u`), a surrogate pair taken whole.
        mutating func unicodeEscape() -> Unicode.Scalar? {
            guard let high = hex4() else { return nil }
            switch high {
            case 0xD800..<0xDC00:
                guard current == UInt8(ascii: "\\") else { return nil }
                index += 1
                guard current == UInt8(ascii: "u") else { return nil }
                index += 1
                guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
            case 0xDC00..<0xE000:
                return nil  // a low surrogate alone
            default:
                return Unicode.Scalar(high)
            }
        }

        mutating func hex4() -> UInt32? {
            guard bytes.count - index >= 4 else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }
    }
}

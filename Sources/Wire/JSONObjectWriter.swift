/// Writes one JSON object byte for byte as `JSONEncoder` with `.sortedKeys`
/// writes it (``Support/encode(_:)``): the same escapes (`\/` included), the
/// same numbers, nil fields left out. The caller adds the fields in sorted
/// key order.
///
/// For the CLI's blocking `container run`: `JSONEncoder`'s first use in a
/// process looks up type metadata and protocol conformances by name, which
/// cost more than the rest of building the request. For the runtime's
/// state.json: JSONEncoder spent most of each write of it.
public struct JSONObjectWriter {
    public private(set) var bytes: [UInt8] = [UInt8(ascii: "{")]
    private var empty = true

    public init() {}

    /// Continues the object whose bytes so far, without its closing brace,
    /// are `opened` (what another encoder wrote).
    public init(opened: some Collection<UInt8>) {
        precondition(opened.first == UInt8(ascii: "{"), "not the start of a JSON object")
        bytes = []
        bytes.reserveCapacity(opened.count + 512)
        bytes += opened
        empty = bytes.count == 1
    }

    /// The object, closed.
    public var finished: [UInt8] { bytes + [UInt8(ascii: "}")] }

    /// A value already encoded as JSON (an object, an array).
    public mutating func field(_ key: String, json value: [UInt8]?) {
        guard let value else { return }
        self.key(key)
        bytes += value
    }

    /// An object whose fields `write` adds (in place: no bytes copied).
    public mutating func field(_ key: String, object write: (inout JSONObjectWriter) -> Void) {
        self.key(key)
        appendObject(write)
    }

    /// An array of objects, each written by `write`.
    public mutating func field<Element>(_ key: String, objects values: [Element], _ write: (inout JSONObjectWriter, Element) -> Void) {
        self.key(key)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            appendObject { write(&$0, value) }
        }
        bytes.append(UInt8(ascii: "]"))
    }

    private mutating func appendObject(_ write: (inout JSONObjectWriter) -> Void) {
        bytes.append(UInt8(ascii: "{"))
        empty = true
        write(&self)
        bytes.append(UInt8(ascii: "}"))
        empty = false
    }

    public mutating func field(_ key: String, _ value: String?) {
        guard let value else { return }
        self.key(key)
        Self.append(string: value, to: &bytes)
    }

    public mutating func field(_ key: String, _ value: Bool?) {
        guard let value else { return }
        self.key(key)
        bytes += (value ? "true" : "false").utf8
    }

    public mutating func field(_ key: String, _ value: (some BinaryInteger)?) {
        guard let value else { return }
        self.key(key)
        bytes += Array(String(value).utf8)
    }

    /// A finite number: `JSONEncoder` refuses NaN and infinities.
    public mutating func field(_ key: String, _ value: Double?) {
        guard let value else { return }
        precondition(value.isFinite, "JSON has no \(value): \(key) must be checked before encoding")
        self.key(key)
        // JSONEncoder's form: Swift's shortest description without a trailing ".0".
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes += Array(text.utf8)
    }

    public mutating func field(_ key: String, _ values: [String]?) {
        guard let values else { return }
        self.key(key)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            Self.append(string: value, to: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    public mutating func field(_ key: String, _ values: [Int]?) {
        guard let values else { return }
        self.key(key)
        bytes += Array(("[" + values.map { String($0) }.joined(separator: ",") + "]").utf8)
    }

    /// Keys in UTF-8 byte order, as `.sortedKeys` orders them.
    public mutating func field(_ key: String, _ values: [String: String]?) {
        guard let values else { return }
        self.key(key)
        var object = JSONObjectWriter()
        for (name, value) in values.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            object.field(name, value)
        }
        bytes += object.finished
    }

    private mutating func key(_ key: String) {
        if !empty { bytes.append(UInt8(ascii: ",")) }
        empty = false
        Self.append(string: key, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }

    /// A JSON string as `JSONEncoder` escapes it: `"`, `\`, `/`, the short
    /// forms of backspace, tab, newline, form feed and return, `\u00xx` for
    /// the other control characters, everything else as is.
    public static func append(string: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            // Byte by byte: an array literal per escape cost an allocation
            // for every `/` of every path.
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(UInt8(ascii: "\\")); bytes.append(byte)
            case 0x08: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "b"))
            case 0x09: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
            case 0x0A: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
            case 0x0C: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "f"))
            case 0x0D: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
            case 0..<0x20:
                bytes += "\\u00".utf8
                bytes.append(hexDigit(byte >> 4))
                bytes.append(hexDigit(byte & 0xF))
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

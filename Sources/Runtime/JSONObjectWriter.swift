/// Appends the members of one JSON object: `key` then the value, commas
/// in between. Strings are escaped as RFC 8259 requires.
struct JSONObjectWriter {
    private var bytes: [UInt8]
    private var empty: Bool

    /// Continues the object whose bytes so far (without the closing brace) are `opened`.
    init(opened: ArraySlice<UInt8>) {
        bytes = Array(opened)
        bytes.reserveCapacity(opened.count + 512)
        empty = opened.last == UInt8(ascii: "{")
    }

    init() {
        self.init(opened: [UInt8(ascii: "{")])
    }

    mutating func closed() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    mutating func key(_ name: String) {
        if !empty { bytes.append(UInt8(ascii: ",")) }
        empty = false
        string(name)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func raw(_ json: [UInt8]) {
        bytes += json
    }

    mutating func boolean(_ value: Bool) {
        bytes += value ? Array("true".utf8) : Array("false".utf8)
    }

    mutating func integer<Value: BinaryInteger>(_ value: Value) {
        bytes += Array(String(value).utf8)
    }

    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xf)]]
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// As the synthesized Codable of an enum with associated values:
    /// `{"exited":{"_0":CODE}}`, `{"unknown":{}}`.
    mutating func exitStatus(_ status: ExitStatus) {
        var inner = JSONObjectWriter()
        switch status {
        case .exited(let code):
            inner.key("exited")
            var value = JSONObjectWriter()
            value.key("_0")
            value.integer(code)
            inner.raw(value.closed())
        case .signaled(let signal):
            inner.key("signaled")
            var value = JSONObjectWriter()
            value.key("_0")
            value.integer(signal)
            inner.raw(value.closed())
        case .unknown:
            inner.key("unknown")
            inner.raw(Array("{}".utf8))
        }
        raw(inner.closed())
    }

    mutating func network(_ network: NetworkAttachment) {
        var object = JSONObjectWriter()
        object.key("address"); object.string(network.address)
        object.key("bridge"); object.string(network.bridge)
        object.key("gateway"); object.string(network.gateway)
        if let hostInterface = network.hostInterface { object.key("hostInterface"); object.string(hostInterface) }
        object.key("ports")
        object.raw([UInt8(ascii: "[")])
        for (index, port) in network.ports.enumerated() {
            if index > 0 { object.raw([UInt8(ascii: ",")]) }
            var entry = JSONObjectWriter()
            entry.key("containerPort"); entry.integer(port.containerPort)
            entry.key("hostAddress"); entry.string(port.hostAddress)
            entry.key("hostPort"); entry.integer(port.hostPort)
            entry.key("transport"); entry.string(port.transport.rawValue)
            object.raw(entry.closed())
        }
        object.raw([UInt8(ascii: "]")])
        object.key("prefixLength"); object.integer(network.prefixLength)
        raw(object.closed())
    }
}

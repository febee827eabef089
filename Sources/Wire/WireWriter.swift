/// Appends values to a byte buffer in Wire's binary format.
///
/// Encodings (all integers not marked fixed are LEB128 varints):
/// - unsigned: LEB128, 7 bits per byte, low groups first, 1–10 bytes.
/// - signed: zigzag (0, -1, 1, -2, ... → 0, 1, 2, 3, ...) then LEB128, so
///   small magnitudes stay small.
/// - fixed-width integers: big-endian (network order), their full width.
/// - bool: one byte, 0 or 1.
/// - bytes and strings: varint length, then the bytes (UTF-8 for strings).
/// - arrays: varint count, then each element.
/// - optionals: one presence byte (0 or 1), then the value if present.
/// - nested `WireCodable` values: varint body length, then the body
///   (see `WireCodable` for why).
///
/// Writing never fails: limits are the reader's and the framer's business.
public struct WireWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    public init(reservingCapacity capacityBytes: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacityBytes)
    }

    /// The number of bytes written so far.
    public var count: Int { bytes.count }

    // MARK: Integers

    public mutating func writeVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: rest))
    }

    /// Zigzag-encodes `value` and writes it as a varint.
    public mutating func writeSigned(_ value: Int64) {
        writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// Writes `value` big-endian in exactly `T.bitWidth / 8` bytes.
    public mutating func writeFixed<T: FixedWidthInteger>(_ value: T) {
        let big = value.bigEndian
        withUnsafeBytes(of: big) { bytes.append(contentsOf: $0) }
    }

    public mutating func writeBool(_ value: Bool) {
        bytes.append(value ? 1 : 0)
    }

    /// Writes an enum tag as one byte (a `UInt8` raw value).
    public mutating func writeTag<T: RawRepresentable>(_ value: T) where T.RawValue == UInt8 {
        bytes.append(value.rawValue)
    }

    // MARK: Bytes and strings

    public mutating func writeBytes<C: Collection>(_ value: C) where C.Element == UInt8 {
        writeVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func writeString(_ value: String) {
        writeBytes(value.utf8)
    }

    // MARK: Composites

    /// Writes a count, then each element with `element`.
    public mutating func writeArray<C: Collection>(_ values: C, _ element: (inout WireWriter, C.Element) -> Void) {
        writeVarint(UInt64(values.count))
        for value in values { element(&self, value) }
    }

    /// Writes a count, then each element as a nested (length-delimited) value.
    public mutating func writeArray<C: Collection>(_ values: C) where C.Element: WireCodable {
        writeVarint(UInt64(values.count))
        for value in values { write(value) }
    }

    /// Writes a presence byte, then the value with `present` if there is one.
    public mutating func writeOptional<T>(_ value: T?, _ present: (inout WireWriter, T) -> Void) {
        if let value {
            bytes.append(1)
            present(&self, value)
        } else {
            bytes.append(0)
        }
    }

    /// Writes a presence byte, then the value as a nested value if present.
    public mutating func writeOptional<T: WireCodable>(_ value: T?) {
        writeOptional(value) { writer, value in writer.write(value) }
    }

    /// Writes a nested value: its body length, then its body.
    public mutating func write<T: WireCodable>(_ value: T) {
        writeLengthDelimited { writer in value.encode(to: &writer) }
    }

    /// Writes a top-level message: `T.wireVersion`, then the value's body
    /// length-delimited. See `WireCodable` for the format.
    public mutating func writeMessage<T: WireCodable>(_ value: T) {
        precondition(T.wireVersion >= 1, "\(T.self).wireVersion is 0; versions start at 1")
        bytes.append(T.wireVersion)
        write(value)
    }

    /// Runs `body`, then prefixes what it wrote with its length.
    ///
    /// One byte is reserved for the length; a body of 128 bytes or more
    /// moves right by the extra length bytes (one move per value), which
    /// keeps the output canonical without encoding the body twice.
    public mutating func writeLengthDelimited(_ body: (inout WireWriter) -> Void) {
        let lengthPosition = bytes.count
        bytes.append(0)
        let bodyStart = bytes.count
        body(&self)
        let bodyLength = bytes.count - bodyStart
        if bodyLength < 0x80 {
            bytes[lengthPosition] = UInt8(bodyLength)
        } else {
            var prefix = WireWriter()
            prefix.writeVarint(UInt64(bodyLength))
            bytes.replaceSubrange(lengthPosition..<bodyStart, with: prefix.bytes)
        }
    }
}

/// Reads Wire-encoded values (see `WireWriter` for the encodings) from
/// untrusted bytes.
///
/// Guarantees, for any input:
/// - no read traps: every out-of-range, overflowing or malformed field throws
///   a `WireError` carrying the offset where the field starts, counted from
///   the start of the message;
/// - no allocation larger than the input: every length and count is checked
///   against the bytes that remain (and against `maxLengthBytes`) *before*
///   anything is allocated for it, so a 3-byte message declaring 2^40 bytes
///   fails at once. Arrays reserve at most one element per remaining byte.
///
/// The reader holds a slice of the caller's buffer and copies only the
/// `bytes` and `String` values it returns.
public struct WireReader: Sendable {
    private let input: ArraySlice<UInt8>
    /// The index in `input`'s base array that offsets are reported from.
    private let origin: Int
    private var position: Int
    /// Upper bound on any length or count, in bytes or elements.
    public let maxLengthBytes: Int
    /// The format version of the top-level message being read (set by
    /// `readMessage`, inherited by nested readers); 0 outside a message.
    public private(set) var messageVersion: UInt8 = 0

    /// A reader over `bytes`; offsets in errors count from `bytes`' first byte.
    public init(_ bytes: ArraySlice<UInt8>, maxLengthBytes: Int = WireLimits.defaultMaxFrameBytes) {
        precondition(maxLengthBytes >= 0, "maxLengthBytes must not be negative, got \(maxLengthBytes)")
        input = bytes
        origin = bytes.startIndex
        position = bytes.startIndex
        self.maxLengthBytes = maxLengthBytes
    }

    public init(_ bytes: [UInt8], maxLengthBytes: Int = WireLimits.defaultMaxFrameBytes) {
        self.init(bytes[...], maxLengthBytes: maxLengthBytes)
    }

    /// A reader bounded to `range` of the parent's input, reporting offsets
    /// relative to the same origin as the parent.
    private init(bounded range: Range<Int>, of parent: WireReader) {
        input = parent.input[range]
        origin = parent.origin
        position = range.lowerBound
        maxLengthBytes = parent.maxLengthBytes
        messageVersion = parent.messageVersion
    }

    /// The offset of the next byte to read, from the start of the message.
    public var offset: Int { position - origin }
    /// Bytes left before the end of the input (or of the current body).
    public var remainingBytes: Int { input.endIndex - position }
    /// Whether every byte has been read. Inside a body, `true` before a field
    /// means an older writer did not send it: use its default.
    public var isAtEnd: Bool { position == input.endIndex }

    // MARK: Bytes and integers

    private func truncated(needing neededBytes: Int, at start: Int? = nil) -> WireError {
        .truncated(offset: (start ?? position) - origin, neededBytes: neededBytes, availableBytes: remainingBytes)
    }

    public mutating func readByte() throws(WireError) -> UInt8 {
        guard position < input.endIndex else { throw truncated(needing: 1) }
        defer { position += 1 }
        return input[position]
    }

    /// Reads an LEB128 varint of at most 10 bytes; rejects values over 64
    /// bits and overlong (non-minimal) encodings, so each value has exactly
    /// one encoding.
    public mutating func readVarint() throws(WireError) -> UInt64 {
        let start = position
        var value: UInt64 = 0
        var shift: UInt64 = 0
        for index in 0..<WireLimits.maxVarintBytes {
            guard position < input.endIndex else {
                throw WireError.truncated(offset: start - origin, neededBytes: index + 1, availableBytes: index)
            }
            let byte = input[position]
            position += 1
            if index == WireLimits.maxVarintBytes - 1 && byte > 1 {
                throw WireError.varintOverflow(offset: start - origin)
            }
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                if byte == 0 && index > 0 {
                    throw WireError.invalidValue(offset: start - origin, type: "varint", reason: "overlong encoding (\(index + 1) bytes, last byte 0)")
                }
                return value
            }
            shift += 7
        }
        throw WireError.varintOverflow(offset: start - origin)
    }

    /// Reads a zigzag-encoded signed varint.
    public mutating func readSigned() throws(WireError) -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// Reads a varint that must fit `T` (for example a `UInt32` field).
    public mutating func readVarint<T: FixedWidthInteger & UnsignedInteger>(as type: T.Type) throws(WireError) -> T {
        let start = position
        let raw = try readVarint()
        guard let value = T(exactly: raw) else {
            throw WireError.invalidValue(offset: start - origin, type: "\(T.self)", reason: "\(raw) does not fit in \(T.bitWidth) bits")
        }
        return value
    }

    /// Reads a big-endian integer of exactly `T.bitWidth / 8` bytes.
    public mutating func readFixed<T: FixedWidthInteger>(_ type: T.Type) throws(WireError) -> T {
        let width = T.bitWidth / 8
        guard remainingBytes >= width else { throw truncated(needing: width) }
        var value: T = 0
        for _ in 0..<width {
            value = (value << 8) | T(truncatingIfNeeded: input[position])
            position += 1
        }
        return value
    }

    public mutating func readBool() throws(WireError) -> Bool {
        let start = position
        switch try readByte() {
        case 0: return false
        case 1: return true
        case let other:
            throw WireError.invalidValue(offset: start - origin, type: "Bool", reason: "byte \(other) is neither 0 nor 1")
        }
    }

    /// Reads a one-byte enum tag; an unknown raw value is `unknownTag`.
    public mutating func readTag<T: RawRepresentable>(_ type: T.Type) throws(WireError) -> T where T.RawValue == UInt8 {
        let start = position
        let raw = try readByte()
        guard let value = T(rawValue: raw) else {
            throw WireError.unknownTag(offset: start - origin, type: "\(T.self)", tag: UInt64(raw))
        }
        return value
    }

    // MARK: Lengths, bytes and strings

    /// Reads a length or count and checks it, before anything is allocated,
    /// against `maxLengthBytes` and against the bytes that remain when each
    /// unit takes at least `minimumBytesPerUnit` bytes.
    public mutating func readLength(minimumBytesPerUnit: Int = 1) throws(WireError) -> Int {
        precondition(minimumBytesPerUnit >= 0, "minimumBytesPerUnit must not be negative")
        let start = position
        let declared = try readVarint()
        guard declared <= UInt64(maxLengthBytes) else {
            throw WireError.lengthExceedsLimit(offset: start - origin, declared: declared, limit: maxLengthBytes)
        }
        let length = Int(declared)
        let (neededBytes, overflow) = length.multipliedReportingOverflow(by: minimumBytesPerUnit)
        guard !overflow, neededBytes <= remainingBytes else {
            throw WireError.truncated(offset: start - origin, neededBytes: overflow ? Int.max : neededBytes, availableBytes: remainingBytes)
        }
        return length
    }

    /// Reads a length-prefixed byte string.
    public mutating func readBytes() throws(WireError) -> [UInt8] {
        let length = try readLength()
        defer { position += length }
        return Array(input[position..<position + length])
    }

    /// Reads a length-prefixed UTF-8 string.
    public mutating func readString() throws(WireError) -> String {
        let start = position
        let length = try readLength()
        guard let value = String(validating: input[position..<position + length], as: UTF8.self) else {
            throw WireError.invalidUTF8(offset: start - origin)
        }
        position += length
        return value
    }

    /// Skips `count` bytes.
    public mutating func skip(_ count: Int) throws(WireError) {
        guard count >= 0, count <= remainingBytes else { throw truncated(needing: count) }
        position += count
    }

    // MARK: Composites

    /// Reads a count, then that many elements with `element`.
    /// `minimumElementBytes` is the fewest bytes one element can take (1 for
    /// a varint or a nested value, 8 for a fixed `UInt64`): the count is
    /// checked against it before the array is reserved.
    public mutating func readArray<T>(
        minimumElementBytes: Int = 1,
        _ element: (inout WireReader) throws(WireError) -> T
    ) throws(WireError) -> [T] {
        let count = try readLength(minimumBytesPerUnit: max(minimumElementBytes, 1))
        var values: [T] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try element(&self)) }
        return values
    }

    /// Reads a count, then that many nested values.
    public mutating func readArray<T: WireCodable>(of type: T.Type) throws(WireError) -> [T] {
        try readArray { (reader: inout WireReader) throws(WireError) -> T in try reader.read(T.self) }
    }

    /// Reads a presence byte, then the value with `present` if it is there.
    public mutating func readOptional<T>(_ present: (inout WireReader) throws(WireError) -> T) throws(WireError) -> T? {
        try readBool() ? try present(&self) : nil
    }

    /// Reads a presence byte, then a nested value if it is there.
    public mutating func readOptional<T: WireCodable>(_ type: T.Type) throws(WireError) -> T? {
        try readOptional { (reader: inout WireReader) throws(WireError) -> T in try reader.read(T.self) }
    }

    /// Reads a nested value: its body length, then `T(from:)` over exactly
    /// that body. Bytes of the body that `T` does not read are fields
    /// appended by a newer writer: they are skipped.
    public mutating func read<T: WireCodable>(_ type: T.Type) throws(WireError) -> T {
        try readLengthDelimited { (body: inout WireReader) throws(WireError) -> T in try T(from: &body) }
    }

    /// Reads a body length, then runs `body` over a reader bounded to that
    /// many bytes, then moves past the whole body whatever `body` read.
    public mutating func readLengthDelimited<T>(_ body: (inout WireReader) throws(WireError) -> T) throws(WireError) -> T {
        let length = try readLength()
        var bodyReader = WireReader(bounded: position..<position + length, of: self)
        let value = try body(&bodyReader)
        position += length
        return value
    }

    /// Reads a top-level message: its version byte (rejected when newer than
    /// `T.wireVersion`, or 0), then its length-delimited body. The caller
    /// should `expectEnd()` afterwards.
    public mutating func readMessage<T: WireCodable>(_ type: T.Type) throws(WireError) -> T {
        let start = position
        let version = try readByte()
        guard version >= 1, version <= T.wireVersion else {
            throw WireError.unknownVersion(offset: start - origin, version: version, newestSupported: T.wireVersion)
        }
        let previousVersion = messageVersion
        messageVersion = version
        defer { messageVersion = previousVersion }
        return try read(T.self)
    }

    /// Throws `trailingBytes` unless every byte has been read.
    public func expectEnd() throws(WireError) {
        guard isAtEnd else { throw WireError.trailingBytes(offset: offset, count: remainingBytes) }
    }
}

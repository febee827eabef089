/// A value with a compact binary encoding.
///
/// ## Format and how it evolves
/// A *top-level message* (what one frame carries, see `wireEncoded()`) is
///
///     version: UInt8 | bodyLength: varint | body: bodyLength bytes
///
/// and every nested `WireCodable` value inside it (written with
/// `WireWriter.write(_:)`) is `bodyLength: varint | body`, without a version.
/// A body is the value's fields in a fixed order, each in its plain encoding:
/// there are no per-field tags.
///
/// We chose a length-delimited body over per-field tags (protobuf) or a field
/// count because it keeps the common case as small as a tagless format
/// (one or two bytes per value) while still letting a type grow:
/// - **Compatible change** (same version): a newer writer *appends* fields at
///   the end of a body. An older reader decodes the fields it knows and skips
///   the rest of the body, because it knows where the body ends. A newer
///   reader that meets an older, shorter body sees `reader.isAtEnd` before
///   the new fields and uses their defaults. Appended fields must therefore be
///   optional in meaning (a default that means "absent").
/// - **Incompatible change** (fields removed, reordered or reinterpreted):
///   bump the type's `wireVersion`. A reader rejects a message whose version
///   is newer than its own with `WireError.unknownVersion`, so an old node
///   fails loudly instead of misreading; a new reader can still decode old
///   versions by switching on `reader.messageVersion`.
///
/// Bytes after the end of a top-level body are `WireError.trailingBytes`:
/// a frame carries exactly one message.
public protocol WireCodable {
    /// The newest format version of this type when it is sent as a top-level
    /// message: what `wireEncoded()` writes and the highest `decode` accepts.
    /// Starts at 1; 0 is never valid.
    static var wireVersion: UInt8 { get }

    /// Appends this value's fields, in their fixed order, to `writer`. Never
    /// called directly for a nested value: use `writer.write(value)`, which
    /// adds the length prefix.
    func encode(to writer: inout WireWriter)

    /// Reads the fields `encode(to:)` wrote, in the same order. `reader` is
    /// bounded to this value's body; fields appended by newer writers are
    /// skipped by the caller. Must never trap on any input.
    init(from reader: inout WireReader) throws(WireError)
}

extension WireCodable {
    public static var wireVersion: UInt8 { 1 }

    /// This value as a top-level message: version byte, then its body
    /// length-delimited. This is what a frame's payload holds.
    public func wireEncoded() -> [UInt8] {
        var writer = WireWriter()
        writer.writeMessage(self)
        return writer.bytes
    }

    /// Decodes a top-level message written by `wireEncoded()`: checks the
    /// version, decodes the body, and rejects any bytes after it.
    /// `maxLengthBytes` bounds every length and count inside (default: the
    /// frame limit), on top of the bound that the input's own size gives.
    public init(wireBytes bytes: [UInt8], maxLengthBytes: Int = WireLimits.defaultMaxFrameBytes) throws(WireError) {
        try self.init(wireBytes: bytes[...], maxLengthBytes: maxLengthBytes)
    }

    /// As `init(wireBytes:)`, over a slice (for example a frame inside a
    /// larger buffer) without copying it.
    public init(wireBytes bytes: ArraySlice<UInt8>, maxLengthBytes: Int = WireLimits.defaultMaxFrameBytes) throws(WireError) {
        var reader = WireReader(bytes, maxLengthBytes: maxLengthBytes)
        self = try reader.readMessage(Self.self)
        try reader.expectEnd()
    }
}

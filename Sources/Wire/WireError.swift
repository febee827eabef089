/// Why bytes could not be decoded or a frame could not be produced.
///
/// Every case that concerns received bytes carries `offset`: the position,
/// counted from the start of the message (or of the frame stream for
/// `frameTooLarge`), where the bad field starts. A peer that sends any of
/// these is either buggy, of an incompatible version, or hostile: the caller
/// should drop the message and, for framing errors, close the connection,
/// because the stream can no longer be resynchronised.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The input ended in the middle of a field.
    case truncated(offset: Int, neededBytes: Int, availableBytes: Int)
    /// A varint ran past 10 bytes or past 64 bits of value.
    case varintOverflow(offset: Int)
    /// A length or count is larger than the reader's limit (usually the
    /// frame limit); nothing was allocated for it.
    case lengthExceedsLimit(offset: Int, declared: UInt64, limit: Int)
    /// A string field is not valid UTF-8.
    case invalidUTF8(offset: Int)
    /// The message was written by a newer format version than this reader
    /// knows (or version 0, which is never written).
    case unknownVersion(offset: Int, version: UInt8, newestSupported: UInt8)
    /// An enum tag (a message kind, an entry kind, ...) this reader does not know.
    case unknownTag(offset: Int, type: String, tag: UInt64)
    /// Bytes follow the end of a complete message.
    case trailingBytes(offset: Int, count: Int)
    /// A field decoded but holds a value its type forbids (a bool byte that
    /// is neither 0 nor 1, an overlong varint, a member id of 0, ...).
    case invalidValue(offset: Int, type: String, reason: String)
    /// A frame header declares, or a payload to send has, more bytes than
    /// the frame limit. Detected from the 4-byte header alone.
    case frameTooLarge(offset: Int, declaredBytes: UInt64, maxFrameBytes: Int)
    /// The frame decoder already failed; the stream is out of sync.
    case streamFailed(firstError: String)

    /// The byte offset the error refers to.
    public var offset: Int? {
        switch self {
        case .truncated(let offset, _, _), .varintOverflow(let offset),
             .lengthExceedsLimit(let offset, _, _), .invalidUTF8(let offset),
             .unknownVersion(let offset, _, _), .unknownTag(let offset, _, _),
             .trailingBytes(let offset, _), .invalidValue(let offset, _, _),
             .frameTooLarge(let offset, _, _):
            return offset
        case .streamFailed:
            return nil
        }
    }

    public var description: String {
        switch self {
        case .truncated(let offset, let needed, let available):
            return "message truncated at byte \(offset): needed \(needed) more bytes, only \(available) left; the sender's message is incomplete or corrupt, drop it"
        case .varintOverflow(let offset):
            return "varint at byte \(offset) is longer than 10 bytes or exceeds 64 bits; the input is corrupt, drop it"
        case .lengthExceedsLimit(let offset, let declared, let limit):
            return "length or count \(declared) at byte \(offset) exceeds the limit of \(limit); nothing was allocated; drop the message (raise the limit only if such messages are legitimate)"
        case .invalidUTF8(let offset):
            return "string at byte \(offset) is not valid UTF-8; the input is corrupt, drop it"
        case .unknownVersion(let offset, let version, let newest):
            return "message at byte \(offset) has format version \(version), but this node reads versions 1...\(newest); upgrade this node or keep the sender on an older version"
        case .unknownTag(let offset, let type, let tag):
            return "unknown \(type) tag \(tag) at byte \(offset); the sender is newer or corrupt, drop the message"
        case .trailingBytes(let offset, let count):
            return "\(count) unexpected bytes after the end of the message at byte \(offset); the input is corrupt, drop it"
        case .invalidValue(let offset, let type, let reason):
            return "invalid \(type) at byte \(offset): \(reason); drop the message"
        case .frameTooLarge(let offset, let declared, let limit):
            return "frame at stream byte \(offset) declares \(declared) bytes, more than maxFrameBytes \(limit); close the connection (or split the payload if this node is the sender)"
        case .streamFailed(let first):
            return "frame stream already failed (\(first)); close the connection and reconnect"
        }
    }
}

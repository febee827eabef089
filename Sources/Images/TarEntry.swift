/// One member of a tar archive after pax and GNU extensions are applied.
/// Names are bytes, not `String`: file names need not be UTF-8, and a
/// lossy conversion would write a different name than the archive holds.
public struct TarEntry: Sendable {
    public enum Kind: Sendable, Equatable {
        case regular, hardLink, symbolicLink, characterDevice, blockDevice, directory, fifo
        case unsupported(UInt8)
    }

    public var kind: Kind
    public var path: [UInt8]
    public var linkName: [UInt8]
    /// Permission and special bits (`0o7777`).
    public var mode: UInt32
    public var uid: Int
    public var gid: Int
    public var size: Int64
    public var modificationSeconds: Int64
    public var modificationNanoseconds: Int
    public var deviceMajor: UInt32
    public var deviceMinor: UInt32
    /// Extended attributes from pax `SCHILY.xattr.NAME` records.
    public var extendedAttributes: [(name: String, value: [UInt8])]

    /// The path for messages (invalid UTF-8 shown as replacement characters).
    public var displayPath: String { String(decoding: path, as: UTF8.self) }
    public var displayLinkName: String { String(decoding: linkName, as: UTF8.self) }
}

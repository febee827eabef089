/// Reads a tar stream entry by entry: ustar, pax extended headers (`x` and
/// global `g`: path, linkpath, size, mtime, uid, gid, SCHILY.xattr.*) and
/// GNU long names and long links (`L`, `K`), numbers in octal or GNU base-256.
///
/// Every byte read from the source is hashed, so after ``finish()`` (which
/// reads the source to its end) ``diffID`` is the SHA-256 of the whole
/// uncompressed stream: the layer's diff ID.
///
/// Use: `while let entry = try reader.next() { try reader.readData { chunk in ... } }`.
/// Data not read is skipped by the next call to `next()`.
public final class TarReader {
    public static let blockBytes = 512
    /// Bytes read from the source at a time.
    public static let bufferBytes = 1 << 20
    /// The largest pax extended header or GNU long name accepted.
    public static let maximumExtensionBytes = 1 << 20
    /// The longest path accepted (Linux PATH_MAX).
    public static let maximumPathBytes = 4096

    private let source: ByteSource
    /// Nil when the caller hashes the stream itself (``ReadAheadByteSource`` does, on its own thread).
    private let hasher: SHA256Hasher?
    private let buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    private var sourceEnded = false
    /// Bytes consumed from the stream (for error offsets).
    public private(set) var offset: Int64 = 0
    /// Data bytes of the current entry not yet read, and padding after them.
    private var remainingData: Int64 = 0
    private var remainingPadding = 0
    private var currentPath = ""
    private var globalRecords: [String: [UInt8]] = [:]
    private var ended = false
    private var digest: Digest?
    private var finished = false

    public init(source: ByteSource, hashing: Bool = true) {
        self.source = source
        hasher = hashing ? SHA256Hasher() : nil
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferBytes, alignment: 4096)
    }

    deinit {
        buffer.deallocate()
    }

    /// The SHA-256 of every byte of the stream; available after ``finish()``
    /// when the reader hashes.
    public var diffID: Digest {
        guard let digest else { preconditionFailure("TarReader.diffID read before finish(), or without hashing") }
        return digest
    }

    /// The next entry, or nil at the end of the archive.
    public func next() throws(LayerExtractionError) -> TarEntry? {
        if ended { return nil }
        try skip(remainingData + Int64(remainingPadding))
        remainingData = 0
        remainingPadding = 0
        var longName: [UInt8]?
        var longLink: [UInt8]?
        var records: [String: [UInt8]] = [:]
        while true {
            let headerOffset = offset
            guard try fill(Self.blockBytes, allowEndOfStream: true) else {
                // No end-of-archive blocks: accept only if nothing was pending.
                if longName != nil || longLink != nil || !records.isEmpty {
                    throw .truncated(entry: nil, reason: "the archive ends after an extended header")
                }
                ended = true
                return nil
            }
            let header = UnsafeRawBufferPointer(rebasing: buffer[start..<(start + Self.blockBytes)])
            if header.allSatisfy({ $0 == 0 }) {
                consume(Self.blockBytes)
                ended = true
                return nil
            }
            try verifyChecksum(header, offset: headerOffset)
            let typeFlag = header[156]
            let size = try number(header, 124, 12, field: "size", offset: headerOffset)
            guard size >= 0 else { throw .malformedHeader(offset: headerOffset, reason: "negative size") }
            switch typeFlag {
            case UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"):
                guard size <= Self.maximumExtensionBytes else {
                    throw .limitExceeded(entry: nil, what: "extended header", limitBytes: Self.maximumExtensionBytes)
                }
                consume(Self.blockBytes)
                let data = try readBytes(Int(size))
                try skip(Int64(Self.padding(size)))
                switch typeFlag {
                case UInt8(ascii: "x"): try Self.parsePax(data, into: &records, offset: headerOffset)
                case UInt8(ascii: "g"): try Self.parsePax(data, into: &globalRecords, offset: headerOffset)
                case UInt8(ascii: "L"): longName = Self.trimNul(data)
                default: longLink = Self.trimNul(data)
                }
                continue
            default:
                break
            }
            var entry = try parseHeader(header, offset: headerOffset, size: size)
            consume(Self.blockBytes)
            if let longName { entry.path = longName }
            if let longLink { entry.linkName = longLink }
            try apply(globalRecords, to: &entry, offset: headerOffset)
            try apply(records, to: &entry, offset: headerOffset)
            // Old tars mark directories only by a trailing slash on a regular entry's (final) name.
            if entry.kind == .regular && entry.path.last == UInt8(ascii: "/") { entry.kind = .directory }
            guard entry.path.count <= Self.maximumPathBytes, entry.linkName.count <= Self.maximumPathBytes else {
                throw .limitExceeded(entry: String(decoding: entry.path.prefix(200), as: UTF8.self),
                                     what: "name", limitBytes: Self.maximumPathBytes)
            }
            // Only regular files carry data; for the others a size is ignored (as GNU tar does for links).
            let carriesData: Bool
            switch entry.kind {
            case .regular, .unsupported: carriesData = true
            default: carriesData = false
            }
            if !carriesData {
                // Hard links and others may declare a size; their data, if any, is skipped.
                remainingData = entry.size
                entry.size = 0
            } else {
                remainingData = entry.size
            }
            remainingPadding = Self.padding(remainingData)
            currentPath = entry.displayPath
            return entry
        }
    }

    /// Streams the current entry's data to `body` in chunks that point into
    /// the reader's buffer (valid only during the call).
    public func readData(_ body: (UnsafeRawBufferPointer) throws(LayerExtractionError) -> Void) throws(LayerExtractionError) {
        while remainingData > 0 {
            if start == end {
                guard try refill() else {
                    throw .truncated(entry: currentPath, reason: "the archive ends \(remainingData) bytes before the end of this file's declared size")
                }
            }
            let count = Int(min(Int64(end - start), remainingData))
            try body(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + count)]))
            consume(count)
            remainingData -= Int64(count)
        }
    }

    /// Reads the rest of the stream (trailing blocks after the end-of-archive
    /// marker belong to the layer too) and fixes ``diffID``.
    public func finish() throws(LayerExtractionError) {
        guard !finished else { return }
        finished = true
        start = end
        while try refill() { start = end }
        digest = hasher?.finish()
    }

    // MARK: Buffer

    private func consume(_ count: Int) {
        start += count
        offset += Int64(count)
    }

    /// Reads more from the source into the buffer (after compacting); false at the end.
    private func refill() throws(LayerExtractionError) -> Bool {
        if sourceEnded { return false }
        if start == end {
            start = 0
            end = 0
        } else if start > 0 {
            buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: end - start)
            end -= start
            start = 0
        }
        guard end < buffer.count else { return true }
        let count = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
        if count == 0 {
            sourceEnded = true
            return false
        }
        hasher?.update(UnsafeRawBufferPointer(rebasing: buffer[end..<(end + count)]))
        end += count
        return true
    }

    /// Makes `count` bytes available; false if the stream ends first and
    /// `allowEndOfStream` (with no partial bytes), otherwise throws.
    private func fill(_ count: Int, allowEndOfStream: Bool) throws(LayerExtractionError) -> Bool {
        while end - start < count {
            if !(try refill()) {
                if allowEndOfStream && start == end { return false }
                throw .truncated(entry: nil, reason: "the archive ends inside a header")
            }
        }
        return true
    }

    private func skip(_ count: Int64) throws(LayerExtractionError) {
        var left = count
        while left > 0 {
            if start == end {
                guard try refill() else {
                    throw .truncated(entry: currentPath, reason: "the archive ends \(left) bytes early")
                }
            }
            let step = Int(min(Int64(end - start), left))
            consume(step)
            left -= Int64(step)
        }
    }

    private func readBytes(_ count: Int) throws(LayerExtractionError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            if start == end {
                guard try refill() else { throw .truncated(entry: nil, reason: "the archive ends inside an extended header") }
            }
            let step = min(end - start, count - bytes.count)
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[start..<(start + step)]))
            consume(step)
        }
        return bytes
    }

    static func padding(_ size: Int64) -> Int {
        Int((Int64(blockBytes) - size % Int64(blockBytes)) % Int64(blockBytes))
    }

    // MARK: Header fields

    private func verifyChecksum(_ header: UnsafeRawBufferPointer, offset: Int64) throws(LayerExtractionError) {
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for index in 0..<Self.blockBytes {
            let byte = (148..<156).contains(index) ? UInt8(ascii: " ") : header[index]
            unsigned += Int64(byte)
            signed += Int64(Int8(bitPattern: byte))
        }
        let recorded = try number(header, 148, 8, field: "checksum", offset: offset)
        guard recorded == unsigned || recorded == signed else {
            throw .malformedHeader(offset: offset, reason: "checksum \(recorded) does not match the header (\(unsigned)): not a tar archive, or corrupt")
        }
    }

    private func parseHeader(_ header: UnsafeRawBufferPointer, offset: Int64, size: Int64) throws(LayerExtractionError) -> TarEntry {
        let magic = Array(header[257..<263])
        let isUstar = magic == Array("ustar\0".utf8)
        var path = Self.field(header, 0, 100)
        if isUstar {
            let prefix = Self.field(header, 345, 155)
            if !prefix.isEmpty { path = prefix + [UInt8(ascii: "/")] + path }
        }
        let kind: TarEntry.Kind
        switch header[156] {
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): kind = .regular
        case UInt8(ascii: "1"): kind = .hardLink
        case UInt8(ascii: "2"): kind = .symbolicLink
        case UInt8(ascii: "3"): kind = .characterDevice
        case UInt8(ascii: "4"): kind = .blockDevice
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "6"): kind = .fifo
        case let other: kind = .unsupported(other)
        }
        let isDevice = kind == .characterDevice || kind == .blockDevice
        return TarEntry(
            kind: kind,
            path: path,
            linkName: Self.field(header, 157, 100),
            mode: UInt32(truncatingIfNeeded: try number(header, 100, 8, field: "mode", offset: offset)) & 0o7777,
            uid: Int(try number(header, 108, 8, field: "uid", offset: offset)),
            gid: Int(try number(header, 116, 8, field: "gid", offset: offset)),
            size: size,
            modificationSeconds: try number(header, 136, 12, field: "mtime", offset: offset),
            modificationNanoseconds: 0,
            deviceMajor: isDevice ? UInt32(truncatingIfNeeded: try number(header, 329, 8, field: "devmajor", offset: offset)) : 0,
            deviceMinor: isDevice ? UInt32(truncatingIfNeeded: try number(header, 337, 8, field: "devminor", offset: offset)) : 0,
            extendedAttributes: []
        )
    }

    /// A NUL-terminated (or full-width) string field.
    static func field(_ header: UnsafeRawBufferPointer, _ at: Int, _ width: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        for index in at..<(at + width) {
            let byte = header[index]
            if byte == 0 { break }
            bytes.append(byte)
        }
        return bytes
    }

    /// An octal number (spaces and NULs around it) or GNU base-256 (high bit set).
    private func number(_ header: UnsafeRawBufferPointer, _ at: Int, _ width: Int, field: String, offset: Int64) throws(LayerExtractionError) -> Int64 {
        let first = header[at]
        if first & 0x80 != 0 {
            // Base-256: two's complement big-endian, the first byte's top bit a marker.
            let negative = first & 0x40 != 0
            var value: Int64 = negative ? -1 : 0
            for index in at..<(at + width) {
                let byte = index == at ? (first & 0x7F) | (negative ? 0x80 : 0) : header[index]
                guard (value >> 55) == 0 || (value >> 55) == -1 else {
                    throw .malformedHeader(offset: offset, reason: "\(field) does not fit in 64 bits")
                }
                value = (value << 8) | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var index = at
        let limit = at + width
        while index < limit && (header[index] == 0x20 || header[index] == 0) { index += 1 }
        var digits = 0
        while index < limit, header[index] >= 0x30, header[index] <= 0x37 {
            guard value < (Int64.max >> 3) else {
                throw .malformedHeader(offset: offset, reason: "\(field) overflows")
            }
            value = value * 8 + Int64(header[index] - 0x30)
            index += 1
            digits += 1
        }
        while index < limit {
            guard header[index] == 0x20 || header[index] == 0 else {
                throw .malformedHeader(offset: offset, reason: "\(field) is not an octal number")
            }
            index += 1
        }
        return value
    }

    private static func trimNul(_ bytes: [UInt8]) -> [UInt8] {
        if let nul = bytes.firstIndex(of: 0) { return Array(bytes[..<nul]) }
        return bytes
    }

    // MARK: pax

    /// Parses `"%d %s=%s\n"` records into `records` (a later key replaces an earlier one).
    static func parsePax(_ data: [UInt8], into records: inout [String: [UInt8]], offset: Int64) throws(LayerExtractionError) {
        var index = 0
        while index < data.count {
            if data[index] == 0 { break }  // some writers pad with NULs
            var length = 0
            var cursor = index
            while cursor < data.count, data[cursor] >= 0x30, data[cursor] <= 0x39 {
                length = length * 10 + Int(data[cursor] - 0x30)
                guard length <= data.count else { break }
                cursor += 1
            }
            guard cursor < data.count, data[cursor] == 0x20, length > cursor - index + 1,
                  index + length <= data.count, data[index + length - 1] == 0x0A else {
                throw .malformedHeader(offset: offset, reason: "malformed pax record")
            }
            let record = data[(cursor + 1)..<(index + length - 1)]
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")) else {
                throw .malformedHeader(offset: offset, reason: "pax record without '='")
            }
            let key = String(decoding: record[record.startIndex..<equals], as: UTF8.self)
            records[key] = Array(record[(equals + 1)...])
            index += length
        }
    }

    private func apply(_ records: [String: [UInt8]], to entry: inout TarEntry, offset: Int64) throws(LayerExtractionError) {
        for (key, value) in records.sorted(by: { $0.key < $1.key }) {
            let text = String(decoding: value, as: UTF8.self)
            switch key {
            case "path":
                entry.path = value
            case "linkpath":
                entry.linkName = value
            case "size":
                guard let size = Int64(text), size >= 0 else {
                    throw .malformedHeader(offset: offset, reason: "pax size \"\(text.prefix(40))\" is not a number")
                }
                entry.size = size
            case "uid", "gid":
                guard let id = Int(text), id >= 0 else {
                    throw .malformedHeader(offset: offset, reason: "pax \(key) \"\(text.prefix(40))\" is not a number")
                }
                if key == "uid" { entry.uid = id } else { entry.gid = id }
            case "mtime":
                guard let (seconds, nanoseconds) = Self.parseTime(text) else {
                    throw .malformedHeader(offset: offset, reason: "pax mtime \"\(text.prefix(40))\" is not a time")
                }
                entry.modificationSeconds = seconds
                entry.modificationNanoseconds = nanoseconds
            default:
                if key.hasPrefix("SCHILY.xattr.") {
                    let name = String(key.dropFirst("SCHILY.xattr.".count))
                    entry.extendedAttributes.removeAll { $0.name == name }
                    entry.extendedAttributes.append((name: name, value: value))
                } else if key.hasPrefix("GNU.sparse.") {
                    throw .unsupportedEntry(entry: entry.displayPath, reason: "GNU sparse files are not supported; rebuild the layer without --sparse")
                }
                // Other keys (atime, ctime, uname, gname, comment, charset) change nothing Shoal keeps.
            }
        }
    }

    /// `seconds[.fraction]`, possibly negative.
    static func parseTime(_ text: String) -> (Int64, Int)? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let seconds = Int64(parts[0]) else { return nil }
        var nanoseconds = 0
        if parts.count == 2 {
            let digits = parts[1].prefix(9)
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(digits) else { return nil }
            nanoseconds = value * Int(pow10(9 - digits.count))
            if seconds < 0 || parts[0].hasPrefix("-") {
                // -1.25 means 1.25 s before the epoch: -2 s + 0.75 s.
                return nanoseconds == 0 ? (seconds, 0) : (seconds - 1, 1_000_000_000 - nanoseconds)
            }
        }
        return (seconds, nanoseconds)
    }

    private static func pow10(_ exponent: Int) -> Int64 {
        var value: Int64 = 1
        for _ in 0..<exponent { value *= 10 }
        return value
    }
}

import CZlib
import Foundation

/// Builds tar archives header by header, so tests can write exactly the
/// hostile or unusual archives real tools refuse to produce.
struct TarBuilder {
    private(set) var bytes: [UInt8] = []

    enum Format { case ustar, gnu }

    /// Appends one member. `declaredSize` overrides the size field (for
    /// archives whose data is shorter than announced).
    mutating func add(
        _ name: String, type: UInt8 = UInt8(ascii: "0"), data: [UInt8] = [], mode: Int = 0o644,
        link: String = "", uid: Int = 0, gid: Int = 0, mtime: Int = 1_700_000_000,
        deviceMajor: Int = 0, deviceMinor: Int = 0, declaredSize: Int? = nil, format: Format = .ustar,
        prefix: String = ""
    ) {
        // Names and targets over 100 bytes travel in a pax header, as GNU tar --format=pax writes them.
        if type != UInt8(ascii: "x") && type != UInt8(ascii: "L") && type != UInt8(ascii: "K")
            && (name.utf8.count > 100 || link.utf8.count > 100) {
            var records: [(String, String)] = []
            if name.utf8.count > 100 { records.append(("path", name)) }
            if link.utf8.count > 100 { records.append(("linkpath", link)) }
            pax(records)
        }
        var header = [UInt8](repeating: 0, count: 512)
        put(Array(name.utf8), at: 0, width: 100, into: &header)
        octal(mode, at: 100, width: 8, into: &header)
        octal(uid, at: 108, width: 8, into: &header)
        octal(gid, at: 116, width: 8, into: &header)
        octal(declaredSize ?? data.count, at: 124, width: 12, into: &header)
        octal(mtime, at: 136, width: 12, into: &header)
        header[156] = type
        put(Array(link.utf8), at: 157, width: 100, into: &header)
        switch format {
        case .ustar:
            put(Array("ustar\0".utf8), at: 257, width: 6, into: &header)
            put(Array("00".utf8), at: 263, width: 2, into: &header)
            put(Array(prefix.utf8), at: 345, width: 155, into: &header)
        case .gnu:
            put(Array("ustar  \0".utf8), at: 257, width: 8, into: &header)
        }
        octal(deviceMajor, at: 329, width: 8, into: &header)
        octal(deviceMinor, at: 337, width: 8, into: &header)
        for index in 148..<156 { header[index] = UInt8(ascii: " ") }
        let sum = header.reduce(0) { $0 + Int($1) }
        octal(sum, at: 148, width: 7, into: &header)
        bytes += header
        bytes += data
        bytes += [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    }

    mutating func file(_ name: String, _ text: String, mode: Int = 0o644) {
        add(name, data: Array(text.utf8), mode: mode)
    }

    mutating func directory(_ name: String, mode: Int = 0o755) {
        add(name, type: UInt8(ascii: "5"), mode: mode)
    }

    mutating func symlink(_ name: String, to target: String) {
        add(name, type: UInt8(ascii: "2"), mode: 0o777, link: target)
    }

    mutating func hardlink(_ name: String, to target: String) {
        add(name, type: UInt8(ascii: "1"), link: target)
    }

    /// A pax extended header (`x`) applying `records` to the next member.
    mutating func pax(_ records: [(String, String)]) {
        var data: [UInt8] = []
        for (key, value) in records {
            let body = " \(key)=\(value)\n"
            var length = body.utf8.count + 1
            while String(length).count + body.utf8.count != length { length += 1 }
            data += Array("\(length)\(body)".utf8)
        }
        add("./PaxHeaders/x", type: UInt8(ascii: "x"), data: data)
    }

    /// A GNU long name (`L`) or long link (`K`) for the next member.
    mutating func gnuLong(_ type: Character, _ value: String) {
        add("././@LongLink", type: type.asciiValue!, data: Array(value.utf8) + [0], format: .gnu)
    }

    /// Two zero blocks: the end of the archive.
    mutating func end() {
        bytes += [UInt8](repeating: 0, count: 1024)
    }

    private func put(_ value: [UInt8], at offset: Int, width: Int, into header: inout [UInt8]) {
        for (index, byte) in value.prefix(width).enumerated() { header[offset + index] = byte }
    }

    private func octal(_ value: Int, at offset: Int, width: Int, into header: inout [UInt8]) {
        let text = String(value, radix: 8)
        let padded = String(repeating: "0", count: max(0, width - 1 - text.count)) + text
        put(Array(padded.utf8), at: offset, width: width - 1, into: &header)
    }
}

/// gzip-compresses bytes with zlib (windowBits 15+16 writes a gzip header).
func gzip(_ input: [UInt8]) -> [UInt8] {
    var stream = z_stream()
    precondition(shoal_deflateInit2(&stream, 6, 15 + 16) == Z_OK)
    defer { deflateEnd(&stream) }
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 64)
    var input = input
    let produced = input.withUnsafeMutableBufferPointer { source in
        output.withUnsafeMutableBufferPointer { target in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            stream.next_out = target.baseAddress
            stream.avail_out = uInt(target.count)
            precondition(deflate(&stream, Z_FINISH) == Z_STREAM_END)
            return target.count - Int(stream.avail_out)
        }
    }
    return Array(output[..<produced])
}

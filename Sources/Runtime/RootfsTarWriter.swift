import Posix
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Writes a POSIX tar stream (ustar headers, a PAX header for names or
/// link targets over 100 bytes) of files taken from the host, for
/// `export`, `commit` and `cp`: regular files, directories, symlinks, devices and FIFOs with
/// their mode, owner and mtime. Sockets are skipped, as tar does.
public final class RootfsTarWriter {
    static let blockBytes = 512
    static let copyChunkBytes = 1 << 20
    private let descriptor: Int32
    private var buffer: [UInt8] = []

    public init(descriptor: Int32) {
        self.descriptor = descriptor
        buffer.reserveCapacity(Self.copyChunkBytes + Self.blockBytes * 4)
    }

    /// Adds the entry at host path `source` as `name` (relative, "/"-separated).
    /// The file is opened without following a symbolic link and must still
    /// be the file `info` describes (a file swapped meanwhile is an error,
    /// never another file's contents).
    public func add(name: String, source: String, info: stat) throws(SystemError) {
        let type = info.st_mode & S_IFMT
        let linkName = type == S_IFLNK ? try Self.readLink(source) : ""
        guard type == S_IFREG && info.st_size > 0 else {
            return try add(name: name, info: info, linkName: linkName, contents: nil)
        }
        let file = try Syscall.open(source, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
        defer { Syscall.close(file) }
        try add(name: name, info: info, linkName: linkName, contents: file)
    }

    /// Adds an entry described by `info` (a link's target in `linkName`); a
    /// regular file's bytes are read from `contents`, which must be that
    /// same file (checked by device and inode).
    public func add(name: String, info: stat, linkName: String, contents: Int32?) throws(SystemError) {
        let type = info.st_mode & S_IFMT
        var size: Int64 = 0
        let flag: UInt8
        switch type {
        case S_IFREG: flag = UInt8(ascii: "0"); size = Int64(info.st_size)
        case S_IFDIR: flag = UInt8(ascii: "5")
        case S_IFLNK: flag = UInt8(ascii: "2")
        case S_IFCHR: flag = UInt8(ascii: "3")
        case S_IFBLK: flag = UInt8(ascii: "4")
        case S_IFIFO: flag = UInt8(ascii: "6")
        default: return
        }
        if type == S_IFREG && size > 0 {
            var opened = stat()
            guard let contents, fstat(contents, &opened) == 0, opened.st_dev == info.st_dev, opened.st_ino == info.st_ino else {
                throw SystemError(call: "open", errno: ESTALE, path: name + " (replaced while being archived)")
            }
        }
        let entryName = type == S_IFDIR ? name + "/" : name
        if entryName.utf8.count > 100 || linkName.utf8.count > 100 {
            var records: [UInt8] = []
            if entryName.utf8.count > 100 { records += Self.paxRecord("path", entryName) }
            if linkName.utf8.count > 100 { records += Self.paxRecord("linkpath", linkName) }
            try append(header(name: "././@PaxHeader", mode: 0o644, uid: 0, gid: 0, size: Int64(records.count),
                              mtime: 0, flag: UInt8(ascii: "x"), linkName: "", major: 0, minor: 0))
            try append(padded(records))
        }
        try append(header(name: entryName, mode: Int(info.st_mode & 0o7777), uid: Int(info.st_uid), gid: Int(info.st_gid),
                          size: size, mtime: Int(info.st_mtim.tv_sec), flag: flag, linkName: linkName,
                          major: Self.major(UInt64(info.st_rdev)), minor: Self.minor(UInt64(info.st_rdev))))
        if let contents, type == S_IFREG && size > 0 { try copyContents(contents, size: size, name: name) }
    }

    /// An empty regular file that exists only in the archive (whiteouts).
    func addEmptyFile(name: String) throws(SystemError) {
        var info = stat()
        info.st_mode = S_IFREG | 0o644
        info.st_mtim.tv_sec = time(nil)
        try add(name: name, info: info, linkName: "", contents: nil)
    }

    /// Two zero blocks end the archive; flushes everything.
    public func finish() throws(SystemError) {
        try append([UInt8](repeating: 0, count: Self.blockBytes * 2))
        try flush()
    }

    private func copyContents(_ file: Int32, size: Int64, name: String) throws(SystemError) {
        var remaining = size
        var chunk = [UInt8](repeating: 0, count: Self.copyChunkBytes)
        while remaining > 0 {
            let wanted = Int(min(Int64(chunk.count), remaining))
            let count = chunk.withUnsafeMutableBytes { read(file, $0.baseAddress, wanted) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError(call: "read", errno: errno, path: name)
            }
            // A file that shrank meanwhile is padded with zeros: the header already promised its size.
            let data = count == 0 ? [UInt8](repeating: 0, count: wanted) : Array(chunk[0..<count])
            try append(data)
            remaining -= Int64(data.count)
        }
        try append([UInt8](repeating: 0, count: (Self.blockBytes - Int(size % Int64(Self.blockBytes))) % Self.blockBytes))
    }

    private func append(_ bytes: [UInt8]) throws(SystemError) {
        buffer += bytes
        if buffer.count >= Self.copyChunkBytes { try flush() }
    }

    private func flush() throws(SystemError) {
        try Syscall.writeAll(descriptor, buffer, path: "export stream")
        buffer.removeAll(keepingCapacity: true)
    }

    private func padded(_ bytes: [UInt8]) -> [UInt8] {
        bytes + [UInt8](repeating: 0, count: (Self.blockBytes - bytes.count % Self.blockBytes) % Self.blockBytes)
    }

    /// `LENGTH key=value\n`, where LENGTH counts itself.
    static func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let body = " \(key)=\(value)\n"
        var length = body.utf8.count + 1
        while String(length).utf8.count + body.utf8.count > length { length += 1 }
        return Array((String(length) + body).utf8)
    }

    static func zeroPadded(_ digits: String, _ length: Int) -> String {
        String(repeating: "0", count: max(0, length - digits.count)) + digits
    }

    /// glibc's gnu_dev_major/gnu_dev_minor (macros Swift does not see).
    static func major(_ device: UInt64) -> Int { Int(((device >> 8) & 0xfff) | ((device >> 32) & ~UInt64(0xfff))) }
    static func minor(_ device: UInt64) -> Int { Int((device & 0xff) | ((device >> 12) & ~UInt64(0xff))) }

    static func readLink(_ path: String) throws(SystemError) -> String {
        var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &target, target.count - 1)
        guard count >= 0 else { throw SystemError(call: "readlink", errno: errno, path: path) }
        return String(decoding: target[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func header(name: String, mode: Int, uid: Int, gid: Int, size: Int64, mtime: Int, flag: UInt8,
                        linkName: String, major: Int, minor: Int) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: Self.blockBytes)
        func put(_ offset: Int, _ length: Int, _ bytes: some Collection<UInt8>) {
            for (index, byte) in bytes.prefix(length).enumerated() { block[offset + index] = byte }
        }
        func octal(_ offset: Int, _ length: Int, _ value: Int64) {
            put(offset, length - 1, Array(Self.zeroPadded(String(value, radix: 8), length - 1).utf8))
        }
        put(0, 100, Array(name.utf8))
        octal(100, 8, Int64(mode))
        octal(108, 8, Int64(uid))
        octal(116, 8, Int64(gid))
        octal(124, 12, size)
        octal(136, 12, Int64(mtime))
        put(148, 8, Array("        ".utf8))
        block[156] = flag
        put(157, 100, Array(linkName.utf8))
        put(257, 6, Array("ustar\0".utf8))
        put(263, 2, Array("00".utf8))
        octal(329, 8, Int64(major))
        octal(337, 8, Int64(minor))
        let checksum = block.reduce(0) { $0 + Int64($1) }
        put(148, 7, Array((Self.zeroPadded(String(checksum, radix: 8), 6) + "\0").utf8))
        return block
    }
}

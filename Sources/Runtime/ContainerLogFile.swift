import Posix
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// How a container's output is kept: Docker's json-file driver options.
public struct LogOptions: Codable, Equatable, Sendable {
    /// `max-size`: the live file is rotated once it reaches this many bytes;
    /// nil keeps one file that grows without bound.
    public var maxSizeBytes: Int64?
    /// `max-file`: files kept, the live one included (1: the live file is
    /// truncated instead of rotated).
    public var maxFiles: Int

    public init(maxSizeBytes: Int64? = nil, maxFiles: Int = 1) {
        self.maxSizeBytes = maxSizeBytes
        self.maxFiles = maxFiles
    }
}

/// One line a container wrote, as the json-file driver stores it:
/// `{"log":"hello\n","stream":"stdout","time":"2026-11-29T08:41:02.123456789Z"}`.
public struct LogEntry: Codable, Equatable, Sendable {
    public var log: String
    public var stream: String
    /// RFC 3339 with nanoseconds, UTC.
    public var time: String

    public init(log: String, stream: String, time: String) {
        self.log = log
        self.stream = stream
        self.time = time
    }
}

/// The writer of a container's `container.log` (JSON lines, both streams in
/// the order they were read) with rotation by size into `container.log.1`
/// (newest) ... `container.log.<maxFiles-1>`. Used by one monitor thread at
/// a time; not thread-safe.
///
/// Output is cut into entries at newlines; a line longer than
/// ``maxLineBytes`` is cut there (as Docker does at 16 KiB), and a partial
/// line is written out when the writer is flushed (exit, detach).
final class ContainerLogFile {
    static let fileName = "container.log"
    /// Longest entry; longer lines become several entries.
    static let maxLineBytes = 16 * 1024

    let path: String
    let options: LogOptions
    private var descriptor: Int32
    private var size: Int64
    private var partial: [String: [UInt8]] = [:]

    init(directory: String, options: LogOptions) throws(SystemError) {
        path = directory + "/" + Self.fileName
        self.options = options
        descriptor = try Syscall.open(path, O_WRONLY | O_APPEND | O_CREAT, mode: 0o600)
        size = Int64(lseek(descriptor, 0, SEEK_END))
    }

    deinit {
        if descriptor >= 0 { Syscall.close(descriptor) }
    }

    /// Flushes and closes the file (the monitor is done with it); later writes are dropped.
    /// Closed here rather than on release: whatever still holds the writer
    /// must not keep a removed container's log open.
    func close() {
        guard descriptor >= 0 else { return }
        flush()
        Syscall.close(descriptor)
        descriptor = -1
    }

    /// Appends what `stream` wrote: every complete line becomes one entry.
    func append(_ bytes: ArraySlice<UInt8>, stream: String) {
        var pending = partial[stream] ?? []
        var output: [UInt8] = []
        let time = Self.timestamp()
        for byte in bytes {
            pending.append(byte)
            if byte == UInt8(ascii: "\n") || pending.count >= Self.maxLineBytes {
                Self.encode(pending, stream: stream, time: time, into: &output)
                pending.removeAll(keepingCapacity: true)
                // Rotate between entries, not only per read: one read can hold many lines.
                if let limit = options.maxSizeBytes, size + Int64(output.count) >= limit {
                    write(output)
                    output.removeAll(keepingCapacity: true)
                }
            }
        }
        partial[stream] = pending
        write(output)
    }

    /// Writes out the partial lines (the process exited, or the monitor stops).
    func flush() {
        var output: [UInt8] = []
        let time = Self.timestamp()
        for stream in partial.keys.sorted() {
            if let pending = partial[stream], !pending.isEmpty { Self.encode(pending, stream: stream, time: time, into: &output) }
        }
        partial = [:]
        write(output)
    }

    private func write(_ output: [UInt8]) {
        guard !output.isEmpty, descriptor >= 0 else { return }
        try? Syscall.writeAll(descriptor, output, path: path)
        size += Int64(output.count)
        if let limit = options.maxSizeBytes, size >= limit { rotate() }
    }

    /// `.log.(n-2)` -> `.log.(n-1)`, ..., `.log` -> `.log.1`, then a new live
    /// file; with one file, the live one is emptied.
    private func rotate() {
        let files = max(1, options.maxFiles)
        if files > 1 {
            for index in stride(from: files - 1, through: 1, by: -1) {
                let source = index == 1 ? path : path + ".\(index - 1)"
                rename(source, path + ".\(index)")
            }
            Syscall.close(descriptor)
            descriptor = (try? Syscall.open(path, O_WRONLY | O_APPEND | O_CREAT, mode: 0o600)) ?? -1
        } else {
            _ = ftruncate(descriptor, 0)
        }
        size = 0
    }

    // MARK: Encoding

    static func encode(_ line: [UInt8], stream: String, time: String, into output: inout [UInt8]) {
        output += Array(#"{"log":"#.utf8)
        appendJSONString(String(decoding: line, as: UTF8.self), to: &output)
        output += Array(#","stream":""#.utf8)
        output += Array(stream.utf8)
        output += Array(#"","time":""#.utf8)
        output += Array(time.utf8)
        output += Array("\"}\n".utf8)
    }

    static func appendJSONString(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): output += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): output += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): output += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): output += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                output += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xf)]]
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    /// Now as RFC 3339 UTC with nanoseconds (what `logs --timestamps` prints).
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let nanoseconds = String(now.tv_nsec)
        let padded = String(repeating: "0", count: max(0, 9 - nanoseconds.count)) + nanoseconds
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(padded)Z"
    }

    // MARK: Reading

    /// Every entry kept in `directory`, oldest first (rotated files, then
    /// the live one). Lines that do not decode (a write cut by a crash) are skipped.
    static func entries(directory: String, maxFiles: Int) -> [LogEntry] {
        let path = directory + "/" + fileName
        var paths: [String] = []
        for index in stride(from: max(1, maxFiles) - 1, through: 1, by: -1) { paths.append(path + ".\(index)") }
        paths.append(path)
        let decoder = JSONDecoder()
        var entries: [LogEntry] = []
        for file in paths {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            entries += decode(Array(data), decoder: decoder)
        }
        return entries
    }

    /// The complete lines of `bytes` as entries.
    static func decode(_ bytes: [UInt8], decoder: JSONDecoder = JSONDecoder()) -> [LogEntry] {
        var entries: [LogEntry] = []
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            if let entry = try? decoder.decode(LogEntry.self, from: Data(line)) { entries.append(entry) }
        }
        return entries
    }
}

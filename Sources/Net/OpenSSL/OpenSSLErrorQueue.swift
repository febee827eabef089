import COpenSSL

/// The boundary where OpenSSL's thread-local error queue becomes Swift values.
///
/// Every OpenSSL call that can fail is preceded by ``clear()`` and, when it
/// fails, followed at once (no `await` between: the queue belongs to the
/// thread) by ``drain()``. Nothing else in Net reads `ERR_get_error`.
enum OpenSSLErrorQueue {
    /// One entry of the queue.
    struct Entry: Sendable, Equatable, CustomStringConvertible {
        let code: UInt
        let library: Int32
        let reason: Int32
        /// OpenSSL's own words, e.g. `error:0A000086:SSL routines::certificate verify failed`.
        let text: String

        var description: String { text }
    }

    static func clear() {
        ERR_clear_error()
    }

    /// Takes every entry from this thread's queue, oldest first.
    static func drain() -> [Entry] {
        var entries: [Entry] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            let text = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            entries.append(Entry(code: code, library: ERR_GET_LIB(code), reason: ERR_GET_REASON(code), text: text))
        }
        return entries
    }

    /// The queue as one line for an error message.
    static func summary(_ entries: [Entry]) -> String {
        entries.isEmpty ? "no detail from OpenSSL" : entries.map(\.text).joined(separator: "; ")
    }
}

/// One byte range of a `Range: bytes=...` request (RFC 9110 §14), resolved
/// against the representation's length. Local to the registry until HTTP
/// grows a shared helper.
struct ByteRange: Equatable, Sendable {
    /// First byte, inclusive.
    var start: Int64
    /// Last byte, inclusive.
    var end: Int64

    var count: Int64 { end - start + 1 }

    enum Outcome: Equatable {
        /// No usable Range field (absent, not `bytes=`, several ranges): send the whole body.
        case whole
        case partial(ByteRange)
        /// A syntactically valid range that misses the representation: 416.
        case unsatisfiable
    }

    /// Resolves `field` (`bytes=0-99`, `bytes=100-`, `bytes=-50`) against `length`.
    /// Several ranges are answered with the whole body (RFC 9110 lets a server ignore Range).
    static func resolve(_ field: String?, length: Int64) -> Outcome {
        guard let field else { return .whole }
        let trimmed = field.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = trimmed.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash].trimmingCharacters(in: .whitespaces)
        let last = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        if first.isEmpty {
            // Suffix range: the last N bytes.
            guard let suffix = Int64(last), suffix >= 0 else { return .whole }
            if suffix == 0 || length == 0 { return .unsatisfiable }
            return .partial(ByteRange(start: max(0, length - suffix), end: length - 1))
        }
        guard let start = Int64(first), start >= 0 else { return .whole }
        var end = length - 1
        if !last.isEmpty {
            guard let value = Int64(last), value >= start else { return .whole }
            end = min(value, length - 1)
        }
        if start >= length { return .unsatisfiable }
        return .partial(ByteRange(start: start, end: end))
    }

    /// Parses the distribution spec's upload `Content-Range: <start>-<end>`
    /// (inclusive; `bytes ` prefix and `/total` suffix tolerated).
    static func parseUploadRange(_ field: String) -> ByteRange? {
        var text = Substring(field.trimmingCharacters(in: .whitespaces))
        if text.lowercased().hasPrefix("bytes") {
            text = text.dropFirst(5).drop { $0 == " " || $0 == "=" }
        }
        if let slash = text.firstIndex(of: "/") { text = text[..<slash] }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = Int64(parts[0]), let end = Int64(parts[1]), start >= 0, end >= start else { return nil }
        return ByteRange(start: start, end: end)
    }
}

/// One byte range of a `Range: bytes=...` request field (RFC 9110 §14.1.2),
/// before it is resolved against a representation's length.
///
/// Shoal serves and sends single ranges only. A field with several ranges,
/// another unit or bad syntax does not parse (`init?(headerValue:)` is nil),
/// and a server then answers the whole representation with 200, which
/// RFC 9110 §14.2 allows ("a server MAY ignore the Range header field").
public enum HTTPByteRange: Sendable, Hashable, CustomStringConvertible {
    /// `bytes=first-last`: both offsets inclusive, `first <= last`.
    case bounded(first: Int, last: Int)
    /// `bytes=first-`: from `first` to the end.
    case from(first: Int)
    /// `bytes=-count`: the last `count` bytes.
    case suffix(count: Int)

    /// Parses a `Range` field value; nil unless it is exactly one valid byte
    /// range (the unit `bytes` compares case-insensitively).
    public init?(headerValue: String) {
        let value = headerValue.trimmingHTTPWhitespace()
        guard let equals = value.firstIndex(of: "="),
              HTTPHeaders.equalNames(String(value[..<equals]).trimmingHTTPWhitespace(), "bytes")
        else { return nil }
        let spec = String(value[value.index(after: equals)...]).trimmingHTTPWhitespace()
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return nil }
        let firstText = spec[..<dash]
        let lastText = spec[spec.index(after: dash)...]
        switch (Self.offset(firstText), Self.offset(lastText)) {
        case (let first?, let last?) where first <= last: self = .bounded(first: first, last: last)
        case (let first?, nil) where lastText.isEmpty: self = .from(first: first)
        case (nil, let count?) where firstText.isEmpty: self = .suffix(count: count)
        default: return nil
        }
    }

    /// 1DIGIT+ that fits an `Int`: an offset past any real length saturates
    /// instead of failing, so `bytes=99999999999999999999-` is unsatisfiable
    /// (416), as the RFC wants, rather than ignored.
    private static func offset(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text) ?? Int.max
    }

    /// The field value to send: `bytes=0-99`, `bytes=100-`, `bytes=-100`.
    public var headerValue: String {
        switch self {
        case .bounded(let first, let last): return "bytes=\(first)-\(last)"
        case .from(let first): return "bytes=\(first)-"
        case .suffix(let count): return "bytes=-\(count)"
        }
    }

    public var description: String { headerValue }

    /// The offsets this range selects in a representation of `length` bytes
    /// (a `last` past the end is cut to the end); nil when it selects none,
    /// which is a 416 (RFC 9110 §14.1.1: unsatisfiable).
    public func resolve(length: Int) -> ClosedRange<Int>? {
        precondition(length >= 0, "a representation length cannot be negative, got \(length)")
        switch self {
        case .bounded(let first, let last):
            guard first < length else { return nil }
            return first...min(last, length - 1)
        case .from(let first):
            guard first < length else { return nil }
            return first...(length - 1)
        case .suffix(let count):
            guard count > 0, length > 0 else { return nil }
            return max(0, length - count)...(length - 1)
        }
    }
}

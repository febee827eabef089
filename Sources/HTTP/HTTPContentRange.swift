/// A response's `Content-Range` field (RFC 9110 §14.4), as a client reads
/// it: which bytes a 206 carries, or, on a 416, only the complete length.
public struct HTTPContentRange: Sendable, Hashable, CustomStringConvertible {
    /// The offsets carried (inclusive); nil for `bytes */length`.
    public let offsets: ClosedRange<Int>?
    /// The representation's whole length; nil when the server said `*`.
    public let completeLength: Int?

    public init(offsets: ClosedRange<Int>?, completeLength: Int?) {
        precondition(offsets != nil || completeLength != nil, "`bytes */*` is not a Content-Range")
        self.offsets = offsets
        self.completeLength = completeLength
    }

    /// Parses `bytes a-b/length`, `bytes a-b/*` or `bytes */length`; nil otherwise.
    public init?(headerValue: String) {
        let value = headerValue.trimmingHTTPWhitespace()
        guard let space = value.firstIndex(of: " "), HTTPHeaders.equalNames(String(value[..<space]), "bytes"),
              let slash = value.firstIndex(of: "/")
        else { return nil }
        let rangeText = value[value.index(after: space)..<slash].trimmingHTTPWhitespace()
        let lengthText = String(value[value.index(after: slash)...])
        let length: Int?
        if lengthText == "*" {
            length = nil
        } else {
            guard let parsed = Self.number(lengthText) else { return nil }
            length = parsed
        }
        if rangeText == "*" {
            guard let length else { return nil }
            self.init(offsets: nil, completeLength: length)
            return
        }
        let bounds = rangeText.split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2, let first = Self.number(bounds[0]), let last = Self.number(bounds[1]), first <= last,
              length.map({ last < $0 }) ?? true
        else { return nil }
        self.init(offsets: first...last, completeLength: length)
    }

    private static func number(_ text: some StringProtocol) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text)
    }

    public var description: String {
        let range = offsets.map { "\($0.lowerBound)-\($0.upperBound)" } ?? "*"
        return "bytes \(range)/\(completeLength.map(String.init) ?? "*")"
    }
}

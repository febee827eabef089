/// Decoded query parameters (`a=1&digest=sha256%3Aab`), in order; a name
/// may repeat. `+` decodes to a space, as in HTML forms.
public struct HTTPQuery: Sendable, Equatable {
    public private(set) var items: [(name: String, value: String)] = []

    /// Parses `raw` (the part after `?`). Malformed escapes are kept
    /// literally rather than failing the request: a handler that needs the
    /// value strictly validates it (a digest, a number) anyway.
    public init(_ raw: some StringProtocol) {
        for pair in raw.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = PercentEncoding.decode(parts[0], plusIsSpace: true) ?? String(parts[0])
            let rawValue = parts.count == 2 ? parts[1] : ""
            let value = PercentEncoding.decode(rawValue, plusIsSpace: true) ?? String(rawValue)
            items.append((name, value))
        }
    }

    /// The first value of `name`.
    public subscript(name: String) -> String? {
        items.first { $0.name == name }?.value
    }

    public func values(for name: String) -> [String] {
        items.compactMap { $0.name == name ? $0.value : nil }
    }

    public static func == (lhs: HTTPQuery, rhs: HTTPQuery) -> Bool {
        lhs.items.count == rhs.items.count && zip(lhs.items, rhs.items).allSatisfy { $0 == $1 }
    }
}

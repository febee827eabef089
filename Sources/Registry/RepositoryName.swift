/// Validation of the names the OCI Distribution spec puts in URLs.
///
/// A repository name is path components separated by `/`, each matching
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` (distribution-spec "Pulling
/// manifests"); a tag matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. Names are
/// checked byte by byte without a regex engine (no backtracking to exploit).
public enum RepositoryName {
    /// The longest repository name accepted (the distribution registry's bound).
    public static let maximumNameBytes = 255
    /// The longest tag (distribution-spec).
    public static let maximumTagBytes = 128

    /// Why `name` is not a valid repository name, or nil if it is.
    public static func problem(with name: String) -> String? {
        let bytes = Array(name.utf8)
        if bytes.isEmpty { return "a repository name cannot be empty" }
        if bytes.count > maximumNameBytes { return "longer than \(maximumNameBytes) bytes" }
        for component in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if let reason = componentProblem(Array(component)) { return reason }
        }
        return nil
    }

    /// One path component: alphanumeric runs joined by `.`, `_`, `__` or `-+`.
    private static func componentProblem(_ bytes: [UInt8]) -> String? {
        if bytes.isEmpty { return "empty path component (leading, trailing or doubled /)" }
        var index = 0
        func isAlphanumeric(_ byte: UInt8) -> Bool {
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
        }
        while true {
            // An alphanumeric run.
            let start = index
            while index < bytes.count, isAlphanumeric(bytes[index]) { index += 1 }
            if index == start {
                if index < bytes.count, bytes[index] >= 0x41, bytes[index] <= 0x5A {
                    return "uppercase letters are not allowed in repository names"
                }
                return "each path component must start and end with a lowercase letter or digit"
            }
            if index == bytes.count { return nil }
            // A separator: ".", "_", "__" or one or more "-".
            switch bytes[index] {
            case UInt8(ascii: "."):
                index += 1
            case UInt8(ascii: "_"):
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "_") { index += 1 }
            case UInt8(ascii: "-"):
                while index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
            case let byte where byte >= 0x41 && byte <= 0x5A:
                return "uppercase letters are not allowed in repository names"
            default:
                return "character \(String(decoding: [bytes[index]], as: UTF8.self).debugDescription) is not allowed (use a-z, 0-9, '.', '_', '-' and '/')"
            }
            if index == bytes.count { return "a path component cannot end with a separator" }
        }
    }

    public static func isValid(_ name: String) -> Bool { problem(with: name) == nil }

    /// Why `tag` is not a valid tag, or nil if it is.
    public static func tagProblem(_ tag: String) -> String? {
        let bytes = Array(tag.utf8)
        guard let first = bytes.first else { return "a tag cannot be empty" }
        if bytes.count > maximumTagBytes { return "longer than \(maximumTagBytes) characters" }
        func isWord(_ byte: UInt8) -> Bool {
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "_")
        }
        if !isWord(first) { return "a tag must start with a letter, digit or '_'" }
        for byte in bytes.dropFirst() where !(isWord(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")) {
            return "character \(String(decoding: [byte], as: UTF8.self).debugDescription) is not allowed in a tag (use A-Z, a-z, 0-9, '_', '.', '-')"
        }
        return nil
    }

    public static func isValidTag(_ tag: String) -> Bool { tagProblem(tag) == nil }
}

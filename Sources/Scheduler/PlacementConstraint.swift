import ClusterState

/// One placement constraint, `node.labels.zone==eu` or `node.role!=manager`,
/// parsed once per service (Docker's syntax; values compare case-insensitively
/// as in swarmkit).
public struct PlacementConstraint: Sendable, Hashable, CustomStringConvertible {
    public enum Key: Sendable, Hashable {
        case nodeID
        case hostname
        case role
        case label(String)
        case platformOS
        case platformArchitecture
    }

    public enum Operator: String, Sendable, Hashable {
        case equal = "=="
        case notEqual = "!="
    }

    public var key: Key
    public var `operator`: Operator
    /// Lowercased: matching ignores case.
    public var value: String
    /// The constraint as written, for reasons and errors.
    public var text: String

    public var description: String { text }

    static let knownKeys = "node.id, node.hostname, node.role, node.labels.<name>, node.platform.os or node.platform.arch"

    /// Parses `KEY==VALUE` or `KEY!=VALUE`; spaces around either side are ignored.
    public static func parse(_ text: String) throws(PlacementError) -> PlacementConstraint {
        func fail(_ reason: String) -> PlacementError { PlacementError(field: "constraint", text: text, reason: reason) }
        let characters = Array(text)
        var operatorStart: Int?
        var foundOperator: Operator?
        var index = 0
        while index + 1 < characters.count {
            if characters[index + 1] == "=" && (characters[index] == "=" || characters[index] == "!") {
                operatorStart = index
                foundOperator = characters[index] == "=" ? .equal : .notEqual
                break
            }
            index += 1
        }
        guard let operatorStart, let foundOperator else {
            throw fail("no operator; write KEY==VALUE or KEY!=VALUE, for example node.labels.zone==eu")
        }
        let keyText = trimmed(String(characters[..<operatorStart]))
        let valueText = trimmed(String(characters[(operatorStart + 2)...]))
        guard !keyText.isEmpty else { throw fail("the key before \(foundOperator.rawValue) is missing; use \(knownKeys)") }
        guard !valueText.isEmpty else { throw fail("the value after \(foundOperator.rawValue) is missing") }
        guard !valueText.contains("="), !valueText.contains("!") else {
            throw fail("the value '\(valueText)' holds a second operator; write one KEY==VALUE per constraint")
        }
        let key: Key
        switch keyText.lowercased() {
        case "node.id": key = .nodeID
        case "node.hostname": key = .hostname
        case "node.role":
            key = .role
            guard Node.Role(rawValue: valueText.lowercased()) != nil else {
                throw fail("node.role is manager or worker, not '\(valueText)'")
            }
        case "node.platform.os": key = .platformOS
        case "node.platform.arch": key = .platformArchitecture
        default:
            let labelPrefix = "node.labels."
            guard keyText.hasPrefix(labelPrefix) else { throw fail("unknown key '\(keyText)'; use \(knownKeys)") }
            let label = String(keyText.dropFirst(labelPrefix.count))
            guard !label.isEmpty else { throw fail("node.labels. needs a label name, as in node.labels.zone==eu") }
            key = .label(label)
        }
        return PlacementConstraint(key: key, operator: foundOperator, value: valueText.lowercased(), text: text)
    }

    /// Parses every constraint of a service, failing on the first malformed one.
    public static func parse(all texts: [String]) throws(PlacementError) -> [PlacementConstraint] {
        var constraints: [PlacementConstraint] = []
        for text in texts { constraints.append(try parse(text)) }
        return constraints
    }

    /// Whether `node` satisfies the constraint. A node without the label
    /// fails `==` and satisfies `!=`.
    public func isSatisfied(by node: Node) -> Bool {
        let actual: String?
        switch key {
        case .nodeID: actual = node.id.rawValue
        case .hostname: actual = node.status.hostname
        case .role: actual = node.spec.role.rawValue
        case .label(let name): actual = node.spec.labels[name]
        case .platformOS: actual = Platform(node.status.platform).operatingSystem
        case .platformArchitecture: actual = Platform(node.status.platform).architecture
        }
        let matches = actual.map { $0.lowercased() == value } ?? false
        return `operator` == .equal ? matches : !matches
    }

    static func trimmed(_ text: String) -> String {
        var slice = Substring(text)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}

/// `os/arch[/variant]` as nodes report it and images declare it.
public struct Platform: Sendable, Hashable {
    public var operatingSystem: String
    public var architecture: String

    public init(_ text: String) {
        let parts = text.lowercased().split(separator: "/", omittingEmptySubsequences: false)
        operatingSystem = parts.first.map(String.init) ?? ""
        architecture = parts.count > 1 ? String(parts[1]) : ""
    }

    /// An image platform without an architecture (`linux`) runs on any architecture of that OS.
    public func supports(_ required: Platform) -> Bool {
        operatingSystem == required.operatingSystem && (required.architecture.isEmpty || architecture == required.architecture)
    }

    /// Whether `node` runs one of `platforms` (a template's `placement.platforms`; empty: any).
    public static func node(_ node: Node, runsAnyOf platforms: [String]) -> Bool {
        if platforms.isEmpty { return true }
        let platform = Platform(node.status.platform)
        return platforms.contains { platform.supports(Platform($0)) }
    }
}

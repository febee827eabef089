/// `spread=node.labels.zone`: balance a service's tasks across the values of
/// a node label (nodes without the label form one more group), as Docker's
/// placement preferences. Several preferences nest: spread over the first,
/// then within each of its groups over the second.
public struct PlacementPreference: Sendable, Hashable, CustomStringConvertible {
    public var label: String
    public var text: String

    public var description: String { text }

    public static func parse(_ text: String) throws(PlacementError) -> PlacementPreference {
        let trimmed = PlacementConstraint.trimmed(text)
        let strategyPrefix = "spread="
        guard trimmed.hasPrefix(strategyPrefix) else {
            throw PlacementError(field: "preference", text: text, reason: "the only strategy is spread; write spread=node.labels.<name>")
        }
        let target = PlacementConstraint.trimmed(String(trimmed.dropFirst(strategyPrefix.count)))
        let labelPrefix = "node.labels."
        guard target.hasPrefix(labelPrefix), target.count > labelPrefix.count else {
            throw PlacementError(field: "preference", text: text, reason: "spread over a node label, as in spread=node.labels.zone")
        }
        return PlacementPreference(label: String(target.dropFirst(labelPrefix.count)), text: text)
    }

    public static func parse(all texts: [String]) throws(PlacementError) -> [PlacementPreference] {
        var preferences: [PlacementPreference] = []
        for text in texts { preferences.append(try parse(text)) }
        return preferences
    }
}

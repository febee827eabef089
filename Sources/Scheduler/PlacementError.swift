/// A placement rule in a service spec that the scheduler cannot read. The
/// API refuses such a spec up front (it calls ``PlacementConstraint/parse(_:)``
/// and ``PlacementPreference/parse(_:)``); the scheduler reports it as the
/// reason a task stays pending if one reached the store anyway.
public struct PlacementError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `constraint` or `preference`.
    public var field: String
    /// The rule as written.
    public var text: String
    /// What is wrong and how to write it instead.
    public var reason: String

    public init(field: String, text: String, reason: String) {
        self.field = field
        self.text = text
        self.reason = reason
    }

    public var description: String { "invalid placement \(field) '\(text)': \(reason)" }
}

/// A bad command line or option value, with the text to show the user.
public struct SimulationUsageError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

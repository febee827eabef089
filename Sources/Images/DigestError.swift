/// A string that is not a digest Shoal accepts (`sha256:<64 lowercase hex>`).
public struct DigestError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The text that was rejected.
    public let text: String
    /// Why it was rejected.
    public let reason: String

    public var description: String {
        "invalid digest \"\(text.prefix(100))\": \(reason); a digest reads sha256:<64 lowercase hex characters>"
    }
}

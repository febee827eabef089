/// A `--change` instruction Shoal refuses, with the instruction as given and
/// what to write instead.
public struct ImageChangeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The instruction as the user wrote it.
    public let instruction: String
    public let reason: String

    public init(instruction: String, reason: String) {
        self.instruction = instruction
        self.reason = reason
    }

    public var description: String {
        "invalid --change \(String(instruction.prefix(300)).debugDescription): \(reason). "
            + "Write one Dockerfile instruction per --change: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL "
            + "VOLUME or HEALTHCHECK, e.g. --change 'CMD [\"/bin/sh\"]' --change 'ENV PATH=/usr/bin:/bin'"
    }
}

/// An image's HEALTHCHECK (Docker's `Healthcheck` in the container
/// config): the probe and its timing, durations in nanoseconds as Docker
/// writes them. `Test` is `["NONE"]` (checks off), `["CMD", argv...]`,
/// `["CMD-SHELL", "command"]`, or empty (inherit the parent's).
public struct HealthConfig: Codable, Hashable, Sendable {
    public var test: [String]?
    public var intervalNanoseconds: Int64?
    public var timeoutNanoseconds: Int64?
    public var startPeriodNanoseconds: Int64?
    public var startIntervalNanoseconds: Int64?
    public var retries: Int?

    enum CodingKeys: String, CodingKey {
        case test = "Test"
        case intervalNanoseconds = "Interval"
        case timeoutNanoseconds = "Timeout"
        case startPeriodNanoseconds = "StartPeriod"
        case startIntervalNanoseconds = "StartInterval"
        case retries = "Retries"
    }

    public init(test: [String]?, intervalNanoseconds: Int64? = nil, timeoutNanoseconds: Int64? = nil,
                startPeriodNanoseconds: Int64? = nil, startIntervalNanoseconds: Int64? = nil, retries: Int? = nil) {
        self.test = test
        self.intervalNanoseconds = intervalNanoseconds
        self.timeoutNanoseconds = timeoutNanoseconds
        self.startPeriodNanoseconds = startPeriodNanoseconds
        self.startIntervalNanoseconds = startIntervalNanoseconds
        self.retries = retries
    }

    /// `HEALTHCHECK NONE`: the image turns checks off.
    public var disablesChecks: Bool { test?.first == "NONE" }

    /// The argv to run in the container, or nil when the test names none
    /// (NONE, empty, or an unknown form): `CMD-SHELL x` runs `/bin/sh -c x`.
    public var command: [String]? {
        guard let test, let kind = test.first else { return nil }
        switch kind {
        case "CMD": return test.count > 1 ? Array(test.dropFirst()) : nil
        case "CMD-SHELL": return test.count == 2 ? ["/bin/sh", "-c", test[1]] : nil
        default: return nil
        }
    }
}

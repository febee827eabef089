import Foundation

/// The time source of `CertificateRenewer`: the wall clock in production, a
/// manual clock in tests (certificate validity is wall-clock time).
public protocol RenewalClock: Sendable {
    var now: Date { get }
    /// Returns at `date` (at once if it has passed); throws on cancellation.
    func sleep(until date: Date) async throws
}

/// The system's wall clock.
public struct SystemRenewalClock: RenewalClock {
    public init() {}
    public var now: Date { Date() }
    public func sleep(until date: Date) async throws {
        let seconds = date.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .seconds(seconds)) }
    }
}

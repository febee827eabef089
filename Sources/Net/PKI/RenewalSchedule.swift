import Foundation

/// When to renew a node certificate: at a random point between 50% and 80%
/// of its lifetime, so a cluster's nodes do not all renew at once and a
/// failed renewal still leaves time to retry before expiry.
///
/// Pure: the caller passes the randomness (a seeded generator in tests and
/// the simulator, ``SecureRandom`` in production) and compares the result
/// with its own clock.
public enum RenewalSchedule {
    public static let earliestFraction = 0.5
    public static let latestFraction = 0.8

    /// The renewal time for a certificate valid from `notBefore` to `notAfter`.
    public static func renewalTime(
        notBefore: Date,
        notAfter: Date,
        using generator: inout some RandomNumberGenerator
    ) -> Date {
        precondition(notAfter > notBefore, "certificate ends (\(notAfter)) before it starts (\(notBefore))")
        let lifetime = notAfter.timeIntervalSince(notBefore)
        let fraction = Double.random(in: earliestFraction...latestFraction, using: &generator)
        return notBefore.addingTimeInterval(lifetime * fraction)
    }

    /// The renewal time for `certificate`.
    public static func renewalTime(for certificate: Certificate, using generator: inout some RandomNumberGenerator) -> Date {
        renewalTime(notBefore: certificate.notBefore, notAfter: certificate.notAfter, using: &generator)
    }
}

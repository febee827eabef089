import Foundation
import Net
import Wire

/// Renews this node's certificate before it expires, over an authenticated
/// connection to a manager, and installs the new one for new connections
/// (existing ones keep theirs; see `CredentialStore`).
///
/// When: `RenewalSchedule` picks a random point between 50% and 80% of the
/// certificate's lifetime, from the generator given (seeded in tests), so
/// nodes do not all renew at once. A failed renewal is retried after
/// `retryDelay` (never later than the certificate's expiry).
public final class CertificateRenewer: @unchecked Sendable {
    /// Wait after a failed renewal before the next attempt.
    public static let retryDelay: Duration = .seconds(60)
    /// Shortest wait between attempts, however close the expiry.
    public static let minimumRetryDelay: Duration = .seconds(1)

    /// When to try again after a failure at `now`: after `retryDelay`, but
    /// sooner (half the time left, at least `minimumRetryDelay`) when the
    /// certificate expires before that. Past expiry no renewal can succeed
    /// (the node must join again), so attempts slow back to `retryDelay`
    /// instead of spinning.
    static func retryTime(now: Date, expiry: Date) -> Date {
        let remaining = expiry.timeIntervalSince(now)
        let delay = seconds(retryDelay)
        guard remaining > 0 else { return now.addingTimeInterval(delay) }
        return now.addingTimeInterval(max(seconds(minimumRetryDelay), min(delay, remaining / 2)))
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    public let store: CredentialStore
    private let clock: any RenewalClock
    private let lock = NSLock()
    // Guarded by `lock`.
    private var generator: any RandomNumberGenerator
    private var scheduled: Date

    public init(store: CredentialStore, clock: any RenewalClock = SystemRenewalClock(), generator: any RandomNumberGenerator = SecureRandom()) {
        self.store = store
        self.clock = clock
        self.generator = generator
        self.scheduled = Self.renewalTime(for: store.current.certificate, using: &self.generator)
    }

    private static func renewalTime(for certificate: Certificate, using generator: inout any RandomNumberGenerator) -> Date {
        RenewalSchedule.renewalTime(for: certificate, using: &generator)
    }

    /// When the current certificate is due for renewal.
    public var renewalTime: Date { lock.withLock { scheduled } }

    /// Renews if the clock says the certificate is due; returns whether it did.
    public func renewIfDue(using client: RPCClient, deadline: ContinuousClock.Instant? = nil) async throws -> Bool {
        guard clock.now >= renewalTime else { return false }
        try await renew(using: client, deadline: deadline)
        return true
    }

    /// Renews now: a fresh key, a CSR, the `renewCertificate` call, checks
    /// on the answer, `persist` (the daemon writes the pair to its data
    /// directory; if that throws, nothing is installed), then the swap. The
    /// next renewal is scheduled from the new certificate.
    public func renew(
        using client: RPCClient,
        deadline: ContinuousClock.Instant? = nil,
        persist: @Sendable (NodeCredentials) throws -> Void = { _ in }
    ) async throws {
        let current = store.current
        guard let identity = current.identity else {
            throw CertificateExchangeError.notANodeCertificate(subject: current.certificate.subject.description)
        }
        let key = try PrivateKey.generateP256()
        let csr = try CertificateSigningRequest.create(nodeID: identity.nodeID, key: key)
        let answer = try await client.call(method: CertificateIssuer.renewMethod,
                                           payload: RenewalRequest(certificateRequestPEM: csr.pemEncoded).wireEncoded(),
                                           deadline: deadline)
        let renewed = try Self.verify(answer, method: CertificateIssuer.renewMethod, key: key, trustedRoot: current.root)
        guard renewed.identity == identity else {
            throw CertificateExchangeError.invalidResponse(method: CertificateIssuer.renewMethod,
                                                           reason: "the renewed certificate names \(renewed.certificate.subject), not \(identity)")
        }
        try persist(renewed)
        try store.install(renewed)
        lock.withLock { scheduled = Self.renewalTime(for: renewed.certificate, using: &generator) }
    }

    /// Renews whenever due, until the task is cancelled. `connect` opens an
    /// authenticated client to a manager (with `store.clientContext`); it is
    /// closed after each attempt. `persist` is as in ``renew(using:deadline:persist:)``;
    /// `onFailure` hears each failed attempt (for the log) before the retry.
    public func run(
        connect: @Sendable () async throws -> RPCClient,
        persist: @Sendable (NodeCredentials) throws -> Void = { _ in },
        onFailure: @Sendable (any Error) -> Void = { _ in }
    ) async {
        while !Task.isCancelled {
            do {
                try await clock.sleep(until: renewalTime)
            } catch {
                return
            }
            do {
                let client = try await connect()
                do {
                    try await renew(using: client, deadline: .now + .seconds(30), persist: persist)
                    await client.close()
                } catch {
                    await client.close()
                    throw error
                }
            } catch {
                onFailure(error)
                do {
                    try await clock.sleep(until: Self.retryTime(now: clock.now, expiry: store.current.certificate.notAfter))
                } catch {
                    return
                }
            }
        }
    }

    /// Parses and checks a certificate answer: the root is `trustedRoot`, the
    /// certificate is signed by it and carries `key`.
    static func verify(_ answer: [UInt8], method: String, key: PrivateKey, trustedRoot: Certificate) throws -> NodeCredentials {
        let response: CertificateResponse
        let certificate: Certificate
        let root: Certificate
        do {
            response = try CertificateResponse(wireBytes: answer)
            certificate = try Certificate(pemEncoded: response.certificatePEM)
            root = try Certificate(pemEncoded: response.rootPEM)
        } catch {
            throw CertificateExchangeError.invalidResponse(method: method, reason: "\(error)")
        }
        guard root.sha256Digest == trustedRoot.sha256Digest else {
            throw CertificateExchangeError.invalidResponse(method: method, reason: "the root CA sent (\(root.sha256Digest)) is not the trusted one (\(trustedRoot.sha256Digest))")
        }
        guard certificate.isSigned(by: trustedRoot) else {
            throw CertificateExchangeError.invalidResponse(method: method, reason: "the certificate is not signed by the cluster's root CA")
        }
        guard certificate.matches(key) else {
            throw CertificateExchangeError.invalidResponse(method: method, reason: "the certificate is not for the key this node generated")
        }
        guard certificate.nodeIdentity != nil else {
            throw CertificateExchangeError.invalidResponse(method: method, reason: "the certificate \(certificate.subject) names no node")
        }
        return NodeCredentials(certificate: certificate, key: key, root: trustedRoot)
    }
}

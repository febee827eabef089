import Foundation
import HTTP
import Images
import Registry

/// Pins a service's image to the digest its tag names on the registry now,
/// as Swarm does at `service create` and `service update --image`: the
/// stored spec says `NAME:TAG@sha256:...`, so every task (replacements and
/// tasks on nodes that join later included) runs that exact image even if
/// the tag is pushed again. `service update --image` resolves anew.
///
/// A manager runs it when the request asks (`?resolveImage=true`; the CLI
/// does unless `--no-resolve-image`), with a registry client of its own.
/// A registry that cannot be reached is not an error: the tag is kept and
/// the caller is warned that nodes may run different images (Docker's
/// behaviour).
final class ServiceImageResolver: Sendable {
    /// What ``resolve(_:)`` decided.
    enum Outcome: Equatable, Sendable {
        /// The image as it must be stored: `NAME:TAG@sha256:...`.
        case pinned(String)
        /// Nothing to resolve: the image names a digest already (or is not
        /// a reference; the spec check reports that).
        case unchanged
        /// The registry did not answer: the tag is kept; `warning` says so.
        case unresolved(warning: String)
    }

    /// How long a registry may take to accept the connection; the whole
    /// lookup is bounded by ``lookupTimeout``. A create waits for it.
    static let connectTimeout: Duration = .seconds(5)
    static let lookupTimeout: Duration = .seconds(10)

    let client: RegistryClient
    let defaultRegistry: String

    init(defaultRegistry: String = ImageReference.shoalDefaultRegistry) {
        var configuration = RegistryClient.Configuration()
        configuration.http.connectTimeout = Self.connectTimeout
        configuration.http.responseTimeout = Self.lookupTimeout
        client = RegistryClient(configuration: configuration)
        self.defaultRegistry = defaultRegistry
    }

    /// Asks `image`'s registry which manifest (or multi-platform index) its
    /// tag names now (a `HEAD`, nothing downloaded).
    func resolve(_ image: String) async -> Outcome {
        guard let reference = try? ImageReference(parsing: image, defaultRegistry: defaultRegistry), reference.digest == nil else { return .unchanged }
        do {
            let digest = try await withDeadline(Self.lookupTimeout) { [client] in try await client.currentDigest(of: reference) }
            // As typed, with Docker's implied `:latest` written out, then the digest.
            let lastComponent = image.split(separator: "/").last ?? ""
            let tagged = lastComponent.contains(":") ? image : image + ":latest"
            return .pinned(tagged + "@" + digest.description)
        } catch {
            return .unresolved(warning: Self.warning(image, reason: "\(error)"))
        }
    }

    /// `body`'s answer, or ``LookupTimedOut`` once `timeout` passed (the
    /// lookup is left to end by itself: a host name being resolved cannot
    /// be interrupted, and the create must not wait for it).
    private func withDeadline(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> Digest) async throws -> Digest {
        try await withCheckedThrowingContinuation { continuation in
            let once = FirstResult(continuation)
            let timer = Task {
                try? await Task.sleep(for: timeout)
                once.resume(.failure(LookupTimedOut(timeout: timeout)))
            }
            Task {
                do { once.resume(.success(try await body())) } catch { once.resume(.failure(error)) }
                timer.cancel()
            }
        }
    }

    /// Resumes its continuation with the first result it is given; later ones are dropped.
    private final class FirstResult: @unchecked Sendable {
        private let lock = NSLock()
        private var continuation: CheckedContinuation<Digest, any Error>?
        init(_ continuation: CheckedContinuation<Digest, any Error>) { self.continuation = continuation }
        func resume(_ result: Result<Digest, any Error>) {
            let waiting = lock.withLock { () -> CheckedContinuation<Digest, any Error>? in
                defer { continuation = nil }
                return continuation
            }
            waiting?.resume(with: result)
        }
    }

    struct LookupTimedOut: Error, CustomStringConvertible {
        var timeout: Duration
        var description: String { "the registry did not answer within \(timeout)" }
    }

    /// Docker's words for a tag that could not be pinned, on one line (it travels in a header).
    static func warning(_ image: String, reason: String) -> String {
        let single = reason.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        return "image \(image) could not be accessed on a registry to record its digest (\(single.prefix(300))); "
            + "each node will access \(image) independently, possibly leading to different nodes running different versions of the image"
    }

    /// Closes the registry connections (the daemon calls it when it stops).
    func shutdown() async {
        await client.shutdown()
    }
}

import Foundation
import Images
import Registry

/// Images from registries, kept in the node's content store: a reference
/// the store already holds (imported, pulled before, or pinned by a digest
/// it has) is used as is; any other is pulled from its registry
/// (`127.0.0.1:5000/web:1`; a name without a registry, `web:1`, is looked
/// for on ``defaultRegistry``), then unpacked as ``LocalImageSource`` does.
///
/// A tag already in the store is not pulled again (roll out new content
/// under a new tag or by digest). Tasks that start at once with the same
/// image share one pull; each hears its progress as `pulling N/M layers`.
public final class RegistryImageSource: ImageSource, @unchecked Sendable {
    public let local: LocalImageSource
    public let client: RegistryClient
    public let defaultRegistry: String

    /// One pull in flight per image, shared by every task that waits on it.
    final class Pull: @unchecked Sendable {
        private let lock = NSLock()
        private var listeners: [@Sendable (String) -> Void] = []
        private var latest: String?
        var task: Task<PullResult, any Error>?

        func listen(_ listener: @escaping @Sendable (String) -> Void) {
            let current = lock.withLock { () -> String? in
                listeners.append(listener)
                return latest
            }
            if let current { listener(current) }
        }

        func publish(_ line: String) {
            let targets = lock.withLock { () -> [@Sendable (String) -> Void] in
                latest = line
                return listeners
            }
            for listener in targets { listener(line) }
        }
    }

    private let lock = NSLock()
    private var pulls: [String: Pull] = [:]

    public init(local: LocalImageSource, client: RegistryClient = RegistryClient(), defaultRegistry: String = ImageReference.shoalDefaultRegistry) {
        self.local = local
        self.client = client
        self.defaultRegistry = defaultRegistry
    }

    public func prepare(reference: String, progress: @escaping @Sendable (String) -> Void) async throws -> PreparedImage {
        if local.resolve(reference) != nil { return try await local.prepare(reference: reference, progress: progress) }
        let parsed: ImageReference
        do {
            parsed = try ImageReference(parsing: reference, defaultRegistry: defaultRegistry)
        } catch {
            throw AgentError.imageUnusable(reference, "it is not a valid image reference (\(error.reason)); write [REGISTRY[:PORT]/]NAME[:TAG]")
        }
        if local.resolve(parsed.localTag) == nil {
            do {
                _ = try await pull(parsed, progress: progress)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw AgentError.pullFailed(reference: reference, registry: parsed.registry, reason: "\(error)")
            }
        }
        var image = try await local.prepare(reference: parsed.localTag, progress: progress)
        image.reference = reference
        return image
    }

    /// Pulls `reference` into the store, joining a pull of it already under way.
    func pull(_ reference: ImageReference, progress: @escaping @Sendable (String) -> Void) async throws -> PullResult {
        let key = reference.localTag
        let pull = lock.withLock { () -> Pull in
            if let existing = pulls[key] { return existing }
            let created = Pull()
            let counter = LayerCounter()
            let platform = Platform(architecture: LocalImageSource.architecture, os: "linux")
            created.publish("pulling \(reference)")
            created.task = Task { [client, store = local.store, weak self] in
                defer { self?.finished(key, created) }
                return try await client.pull(reference, into: store, platform: platform) { event in
                    if let line = counter.record(event) { created.publish(line) }
                }
            }
            pulls[key] = created
            return created
        }
        pull.listen(progress)
        return try await pull.task!.value
    }

    private func finished(_ key: String, _ pull: Pull) {
        lock.withLock {
            if pulls[key] === pull { pulls[key] = nil }
        }
    }
}

/// Turns per-blob progress into `pulling N/M layers` lines, one per change.
final class LayerCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var layers: Set<Digest> = []
    private var done: Set<Digest> = []

    func record(_ event: BlobProgress) -> String? {
        guard event.kind == "layer" else { return nil }
        return lock.withLock { () -> String? in
            let known = layers.insert(event.digest).inserted
            var finished = false
            if event.state == .complete || event.state == .alreadyExists { finished = done.insert(event.digest).inserted }
            guard known || finished else { return nil }
            return "pulling \(done.count)/\(layers.count) layers"
        }
    }
}

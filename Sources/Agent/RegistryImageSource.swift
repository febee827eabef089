import Foundation
import Images
import Registry

/// Images from registries, kept in the node's content store: a reference
/// the store already holds (imported, pulled before, or pinned by a digest
/// it has) is used as is; any other is pulled from its registry
/// (`127.0.0.1:5000/web:1`; a name without a registry, `web:1`, is looked
/// for on ``defaultRegistry``), then unpacked as ``LocalImageSource`` does.
///
/// A tag this source pulled before is checked against its registry when a
/// task starts (a `HEAD` of the manifest): if the tag was pushed again, the
/// new image is pulled, as Swarm's agents run what the tag names now. If
/// the registry cannot be reached, the copy in the store is used. Tags the
/// store got otherwise (`shoal image import`, `load`) are never looked up
/// on a registry. Tasks that start at once with the same image share one
/// pull (and one check); each hears its progress as `pulling N/M layers`.
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
    /// Tags this source pulled (local tag -> the digest the registry named
    /// then), kept in ``pulledTagsPath`` across restarts.
    private var pulledTags: [String: Digest] = [:]
    /// Where ``pulledTags`` is kept: beside the content store.
    public let pulledTagsPath: String

    public init(local: LocalImageSource, client: RegistryClient = RegistryClient(), defaultRegistry: String = ImageReference.shoalDefaultRegistry) {
        self.local = local
        self.client = client
        self.defaultRegistry = defaultRegistry
        pulledTagsPath = local.store.root + "/pulled-tags.json"
        if let data = FileManager.default.contents(atPath: pulledTagsPath),
           let saved = try? JSONDecoder().decode([String: String].self, from: data) {
            pulledTags = saved.compactMapValues { try? Digest(parsing: $0) }
        }
    }

    public func prepare(reference: String, progress: @escaping @Sendable (String) -> Void) async throws -> PreparedImage {
        let parsedOrNil = try? ImageReference(parsing: reference, defaultRegistry: defaultRegistry)
        if let parsed = parsedOrNil, let digest = parsed.digest { return try await preparePinned(reference, parsed, digest, progress: progress) }
        let pulledBefore = parsedOrNil.map { $0.digest == nil && pulledDigest($0.localTag) != nil } ?? false
        if local.resolve(reference) != nil && !pulledBefore { return try await local.prepare(reference: reference, progress: progress) }
        let parsed: ImageReference
        do {
            parsed = try ImageReference(parsing: reference, defaultRegistry: defaultRegistry)
        } catch {
            throw AgentError.imageUnusable(reference, "it is not a valid image reference (\(error.reason)); write [REGISTRY[:PORT]/]NAME[:TAG]")
        }
        var needsPull = local.resolve(parsed.localTag) == nil
        if !needsPull && pulledBefore { needsPull = await tagMoved(parsed) }
        if needsPull { try await pullForTask(parsed, asked: reference, progress: progress) }
        return try await prepareStored(parsed.localTag, asked: reference, progress: progress)
    }

    /// Pulls `reference` for a task that asked for `asked`: a failure is the
    /// task's ``AgentError/pullFailed(reference:registry:reason:)``.
    private func pullForTask(_ reference: ImageReference, asked: String, progress: @escaping @Sendable (String) -> Void) async throws {
        do {
            _ = try await pull(reference, progress: progress)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw AgentError.pullFailed(reference: asked, registry: reference.registry, reason: "\(error)")
        }
    }

    /// The image the store holds under `localTag`, named as the task asked for it.
    private func prepareStored(_ localTag: String, asked: String, progress: @escaping @Sendable (String) -> Void) async throws -> PreparedImage {
        var image = try await local.prepare(reference: localTag, progress: progress)
        image.reference = asked
        return image
    }

    /// `NAME[:TAG]@sha256:...` (a service image pinned at create): exactly
    /// that image, whatever the tag names now. The store's copy if it has
    /// it (pulled by this digest before, or the tag's manifest is that
    /// digest), else pulled by digest and kept as `NAME@sha256:...`; the
    /// tag is never looked up.
    private func preparePinned(_ reference: String, _ parsed: ImageReference, _ digest: Digest,
                               progress: @escaping @Sendable (String) -> Void) async throws -> PreparedImage {
        let byDigest = ImageReference(registry: parsed.registry, repository: parsed.repository, digest: digest)
        if local.resolve(byDigest.localTag) == nil {
            if local.store.contains(digest) {
                // Its manifest is here already (a tag pulled or imported): named by its digest too, so it stays.
                do {
                    try local.store.tag(byDigest.localTag, to: digest)
                } catch {
                    throw AgentError.imageUnusable(reference, "the store cannot name it by its digest: \(error)")
                }
            } else {
                try await pullForTask(byDigest, asked: reference, progress: progress)
            }
        }
        return try await prepareStored(byDigest.localTag, asked: reference, progress: progress)
    }

    /// The registry digest recorded when `localTag` was pulled, if this source pulled it.
    func pulledDigest(_ localTag: String) -> Digest? { lock.withLock { pulledTags[localTag] } }

    /// True when the registry's tag names another image than the one pulled
    /// (pushed again since). False when it cannot tell (registry down, tag
    /// gone): the task runs the copy in the store rather than not at all.
    private func tagMoved(_ reference: ImageReference) async -> Bool {
        guard let pulled = pulledDigest(reference.localTag),
              let current = try? await client.currentDigest(of: reference) else { return false }
        return current != pulled
    }

    private func recordPull(_ result: PullResult) {
        let saved = lock.withLock { () -> [String: String] in
            pulledTags[result.reference.localTag] = result.index ?? result.manifest
            return pulledTags.mapValues(\.description)
        }
        // Temp file and rename: a crash leaves the old record, never half of one.
        guard let data = try? JSONEncoder().encode(saved) else { return }
        let temporary = pulledTagsPath + ".partial"
        if FileManager.default.createFile(atPath: temporary, contents: data) { _ = rename(temporary, pulledTagsPath) }
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
                let result = try await client.pull(reference, into: store, platform: platform) { event in
                    if let line = counter.record(event) { created.publish(line) }
                }
                if reference.digest == nil { self?.recordPull(result) }
                return result
            }
            pulls[key] = created
            return created
        }
        pull.listen(progress)
        return try await pull.task!.value
    }

    /// Cancels the pulls under way (their tasks fail with a cancellation),
    /// waits for them to end, then closes the registry client's pooled
    /// connections. The agent calls it when it stops, so a stopped agent
    /// holds no registry connection and runs no pull.
    public func shutdown() async {
        let running = lock.withLock { () -> [Pull] in
            defer { pulls = [:] }
            return Array(pulls.values)
        }
        for pull in running { pull.task?.cancel() }
        for pull in running { _ = try? await pull.task?.value }
        await client.shutdown()
    }

    /// Pulls under way now (tests).
    var pullsInFlight: Int { lock.withLock { pulls.count } }

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

import Foundation
import Images
#if canImport(Glibc)
import Glibc
#endif

/// An image ready to run: its layers unpacked (topmost first, as overlayfs
/// `lowerdir` wants them) and its execution defaults.
public struct PreparedImage: Sendable {
    public var reference: String
    public var lowerDirectories: [String]
    public var config: ImageConfig.ContainerConfig?
    /// The image manifest the layers come from (an index resolved to its
    /// platform's manifest): what `commit` builds on.
    public var manifestDigest: Digest?

    public init(reference: String, lowerDirectories: [String], config: ImageConfig.ContainerConfig?, manifestDigest: Digest? = nil) {
        self.reference = reference
        self.lowerDirectories = lowerDirectories
        self.config = config
        self.manifestDigest = manifestDigest
    }
}

/// Where the agent gets images from: the node's content store
/// (``LocalImageSource``), or registries that fill it
/// (``RegistryImageSource``).
public protocol ImageSource: Sendable {
    /// Resolves `reference` and unpacks its layers, calling `progress` with
    /// a short line for the task's status (`pulling 3/5 layers`) as work
    /// advances. Throws an ``AgentError`` a user can act on when the image
    /// is unknown, cannot be pulled or is broken.
    func prepare(reference: String, progress: @escaping @Sendable (String) -> Void) async throws -> PreparedImage

    /// Ends the work under way and lets go of what the source holds
    /// (registry connections); the owner calls it when it stops. A source
    /// may be used again afterwards: it opens what it needs anew.
    func shutdown() async
}

extension ImageSource {
    public func shutdown() async {}

    public func prepare(reference: String) async throws -> PreparedImage {
        try await prepare(reference: reference, progress: { _ in })
    }
}

/// Images from the node's own content store, by tag (`shoal image import`),
/// unpacked once per layer into `layerCacheDirectory/<digest hex>` and
/// shared read-only by every container that uses the layer.
public final class LocalImageSource: ImageSource, @unchecked Sendable {
    public let store: ContentStore
    public let layerCacheDirectory: String
    /// Held while a layer is unpacked.
    private let lock = NSLock()
    /// Images prepared before, by manifest digest: a manifest never changes
    /// (its digest is its content) and unpacked layers stay, so a container
    /// of an image already run needs no manifest, config or layer read.
    private let preparedLock = NSLock()
    private var prepared: [Digest: PreparedImage] = [:]

    public init(store: ContentStore, layerCacheDirectory: String) throws {
        self.store = store
        self.layerCacheDirectory = layerCacheDirectory
        try FileManager.default.createDirectory(atPath: layerCacheDirectory, withIntermediateDirectories: true)
    }

    /// `busybox` is looked up as given, then as `busybox:latest`.
    static func candidates(_ reference: String) -> [String] {
        let lastComponent = reference.split(separator: "/").last.map(String.init) ?? reference
        if lastComponent.contains(":") || reference.contains("@") { return [reference] }
        return [reference, reference + ":latest"]
    }

    public func prepare(reference: String, progress: @escaping @Sendable (String) -> Void) async throws -> PreparedImage {
        // Prepared before: one tag lookup (as `RegistryImageSource` makes here too), no thread.
        if let digest = resolve(reference), let image = preparedBefore(digest, reference: reference) { return image }
        // Blocking file work (SQLite, extraction): keep it off the cooperative pool.
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PreparedImage, any Error>) in
            Thread.detachNewThread {
                continuation.resume(with: Result { try self.prepareBlocking(reference: reference) })
            }
        }
    }

    /// The manifest (or index) a reference names in the store, if any. One
    /// that ends in `@sha256:...` names that digest, whatever its tag says.
    public func resolve(_ reference: String) -> Digest? {
        for candidate in Self.candidates(reference) {
            if let digest = try? store.resolve(tag: candidate) { return digest }
        }
        if let at = reference.lastIndex(of: "@"), let digest = try? Digest(parsing: String(reference[reference.index(after: at)...])),
           store.contains(digest) {
            return digest
        }
        return nil
    }

    func prepareBlocking(reference: String) throws -> PreparedImage {
        guard let manifestDigest = resolve(reference) else { throw AgentError.imageNotFound(reference) }
        return try prepareBlocking(reference: reference, manifestDigest: manifestDigest)
    }

    /// The image prepared from `manifestDigest` before, if its layers are still unpacked.
    private func preparedBefore(_ manifestDigest: Digest, reference: String) -> PreparedImage? {
        guard var image = preparedLock.withLock({ prepared[manifestDigest] }),
              image.lowerDirectories.allSatisfy({ access($0, F_OK) == 0 }) else { return nil }
        image.reference = reference
        return image
    }

    func prepareBlocking(reference: String, manifestDigest: Digest) throws -> PreparedImage {
        if let image = preparedBefore(manifestDigest, reference: reference) { return image }
        let image = try prepareUncached(reference: reference, manifestDigest: manifestDigest)
        preparedLock.withLock { prepared[manifestDigest] = image }
        return image
    }

    private func prepareUncached(reference: String, manifestDigest: Digest) throws -> PreparedImage {
        let manifest: ImageManifest
        var imageManifestDigest = manifestDigest
        do {
            var document = try ImageDocument.decode(try store.read(manifestDigest, maximumBytes: Int64(ImageDocument.maximumManifestBytes)))
            if case .index(let index) = document {
                guard let entry = index.manifests.first(where: { $0.platform == nil || ($0.platform?.os == "linux" && $0.platform?.architecture == Self.architecture) }) else {
                    throw AgentError.imageUnusable(reference, "the index has no linux/\(Self.architecture) manifest")
                }
                document = try ImageDocument.decode(try store.read(entry.digest, maximumBytes: Int64(ImageDocument.maximumManifestBytes)))
                imageManifestDigest = entry.digest
            }
            guard case .manifest(let decoded) = document else { throw AgentError.imageUnusable(reference, "nested indexes are not supported") }
            manifest = decoded
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError.imageUnusable(reference, "its manifest cannot be read: \(error)")
        }
        var config: ImageConfig?
        if let bytes = try? store.read(manifest.config.digest, maximumBytes: Int64(ImageDocument.maximumConfigBytes)) {
            config = try? ImageDocument.decodeConfig(bytes)
        }
        var directories: [String] = []
        for (index, layer) in manifest.layers.enumerated() {
            let expected = config.flatMap { index < $0.rootfs.diffIDs.count ? $0.rootfs.diffIDs[index] : nil }
            directories.append(try unpack(layer.digest, expectedDiffID: expected, reference: reference))
        }
        guard !directories.isEmpty else { throw AgentError.imageUnusable(reference, "the image has no layers") }
        return PreparedImage(reference: reference, lowerDirectories: directories.reversed(), config: config?.config,
                             manifestDigest: imageManifestDigest)
    }

    /// Unpacks one layer unless it already is; one extraction at a time.
    private func unpack(_ digest: Digest, expectedDiffID: Digest?, reference: String) throws -> String {
        let target = layerCacheDirectory + "/" + digest.hex
        lock.lock()
        defer { lock.unlock() }
        if FileManager.default.fileExists(atPath: target) { return target }
        guard store.contains(digest) else { throw AgentError.imageUnusable(reference, "layer \(digest) is missing from the content store") }
        let temporary = target + ".partial"
        try? FileManager.default.removeItem(atPath: temporary)
        do {
            try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
            let extractor = try LayerExtractor(rootPath: temporary, options: LayerExtractor.Options(mode: .overlay))
            _ = try extractor.extract(layerAt: store.path(for: digest), expectedDiffID: expectedDiffID)
            try FileManager.default.moveItem(atPath: temporary, toPath: target)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw AgentError.imageUnusable(reference, "unpacking layer \(digest) failed: \(error)")
        }
        return target
    }

    static var architecture: String {
        #if arch(x86_64)
        return "amd64"
        #elseif arch(arm64)
        return "arm64"
        #else
        return "unknown"
        #endif
    }
}

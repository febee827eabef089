import Posix
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `docker commit` on the content store's side: a container's writable
/// layer (an uncompressed OCI layer tar, whiteouts included) becomes one
/// more gzip layer on top of the image the container was created from.
///
/// The new config is the parent's with the new diff ID and history entry
/// appended and its container config as the caller sets it (the
/// container's command, environment, ... then `--change` instructions);
/// the manifest lists the parent's layers and the new one, in the parent
/// manifest's media-type family (Docker schema 2 stays Docker). Blobs are
/// stored first and the tag is written last, so a failure leaves no name
/// pointing at a half-made image (unreferenced blobs go with `image prune`).
public struct ImageCommitter {
    public let store: ContentStore

    public init(store: ContentStore) {
        self.store = store
    }

    /// Uncompressed tar bytes read at a time.
    static let readChunkBytes = 1 << 20

    /// What a commit adds besides the layer.
    public struct Commit: Sendable {
        /// The image manifest (not an index) the container runs on.
        public var parent: Digest
        /// `NAME:TAG` to point at the new image, or nil for an untagged one.
        public var tag: String?
        public var author: String?
        public var comment: String?
        /// The history entry's `created_by` (the container's command).
        public var createdBy: String
        /// Dockerfile instructions applied last (`--change`).
        public var changes: [String]
        public var created: Date

        public init(parent: Digest, tag: String?, author: String? = nil, comment: String? = nil, createdBy: String,
                    changes: [String] = [], created: Date = Date()) {
            self.parent = parent
            self.tag = tag
            self.author = author
            self.comment = comment
            self.createdBy = createdBy
            self.changes = changes
            self.created = created
        }
    }

    /// The digests of a committed image.
    public struct CommittedImage: Sendable, Equatable {
        public var manifest: Digest
        public var config: Digest
        public var layer: Digest
        public var diffID: Digest
        /// The new layer's compressed and uncompressed sizes.
        public var layerBytes: Int64
        public var uncompressedBytes: Int64
    }

    /// Reads the layer tar from `descriptor` to its end and stores the
    /// image. `configure` turns the parent's container config into the
    /// container's (before `changes` apply).
    public func commit(layerTar descriptor: Int32, _ commit: Commit,
                       configure: (inout ImageConfig.ContainerConfig) -> Void) throws(ImageCommitError) -> CommittedImage {
        if let tag = commit.tag {
            do { try ContentStore.validateTag(tag) } catch { throw .store(error) }
        }
        let (parentManifest, parentConfig) = try readParent(commit.parent)
        var containerConfig = parentConfig.config ?? .init()
        configure(&containerConfig)
        do {
            containerConfig = try ImageChange.apply(commit.changes, to: containerConfig)
        } catch {
            throw .change(error)
        }

        let docker = parentManifest.mediaType == MediaType.dockerManifest
        let blob: BlobWriter
        let compressor: GzipLayerWriter
        do {
            blob = try store.makeWriter()
            compressor = try GzipLayerWriter(blob: blob)
        } catch {
            throw .store(error)
        }
        let diffID: Digest
        let layer: Digest
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readChunkBytes, alignment: 16)
        defer { buffer.deallocate() }
        do {
            while true {
                let count = read(descriptor, buffer.baseAddress, buffer.count)
                if count < 0 {
                    if errno == EINTR { continue }
                    blob.abort()
                    throw ImageCommitError.layerUnreadable(SystemError(call: "read", errno: errno, path: "container changes"))
                }
                if count == 0 { break }
                try compressor.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            }
            diffID = try compressor.finish()
            layer = try blob.commit()
        } catch let error as ImageCommitError {
            throw error
        } catch {
            blob.abort()
            throw .store(error as! ContentStoreError)
        }

        let timestamp = ISO8601DateFormatter().string(from: commit.created)
        var config = parentConfig
        config.created = timestamp
        config.author = commit.author
        config.config = containerConfig
        config.rootfs.diffIDs.append(diffID)
        var entry = ImageConfig.History(created: timestamp, createdBy: commit.createdBy, comment: commit.comment)
        entry.author = commit.author
        config.history = (parentConfig.history ?? []) + [entry]
        do {
            let configBytes = ImageDocument.encode(config)
            let configDigest = try store.write(configBytes)
            let layerDescriptor = Descriptor(mediaType: docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip,
                                             digest: layer, size: blob.writtenBytes)
            let manifest = ImageManifest(
                mediaType: docker ? MediaType.dockerManifest : MediaType.ociManifest,
                config: Descriptor(mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig, digest: configDigest,
                                   size: Int64(configBytes.count)),
                layers: parentManifest.layers + [layerDescriptor])
            let manifestBytes = ImageDocument.encode(manifest)
            let manifestDigest = try store.write(manifestBytes)
            try store.addReferences(from: manifestDigest, to: [configDigest] + manifest.layers.map(\.digest))
            if let tag = commit.tag { try store.tag(tag, to: manifestDigest) }
            return CommittedImage(manifest: manifestDigest, config: configDigest, layer: layer, diffID: diffID,
                                  layerBytes: blob.writtenBytes, uncompressedBytes: compressor.uncompressedBytes)
        } catch {
            throw .store(error)
        }
    }

    /// The parent's manifest and config; its layers must all be present.
    func readParent(_ digest: Digest) throws(ImageCommitError) -> (ImageManifest, ImageConfig) {
        guard store.contains(digest) else { throw .parentMissing(digest) }
        do {
            guard case .manifest(let manifest) = try ImageDocument.decode(
                try store.read(digest, maximumBytes: Int64(ImageDocument.maximumManifestBytes))) else {
                throw ImageCommitError.parentUnreadable(digest, reason: "it is an index, not an image manifest")
            }
            let config = try ImageDocument.decodeConfig(
                try store.read(manifest.config.digest, maximumBytes: Int64(ImageDocument.maximumConfigBytes)))
            guard config.rootfs.diffIDs.count == manifest.layers.count else {
                throw ImageCommitError.parentUnreadable(
                    digest, reason: "its config lists \(config.rootfs.diffIDs.count) diff IDs for \(manifest.layers.count) layers")
            }
            for layer in manifest.layers where !store.contains(layer.digest) {
                throw ImageCommitError.parentUnreadable(digest, reason: "its layer \(layer.digest) is missing from the content store")
            }
            return (manifest, config)
        } catch let error as ImageCommitError {
            throw error
        } catch {
            throw .parentUnreadable(digest, reason: "\(error)")
        }
    }
}

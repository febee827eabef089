import Posix
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `shoal image import ROOTFS.tar NAME:TAG`: stores a root file system
/// tarball as a single-layer OCI image (layer, config with its diff ID,
/// manifest) and tags it.
///
/// The tarball is read once: its bytes stream into the store (hashed for the
/// layer digest) while a ``TarReader`` walks the (decompressed) stream to
/// check that every header is valid and every name stays inside the root,
/// and to compute the diff ID. A tarball the extractor would refuse is
/// refused here, before anything is tagged.
public struct ImageImporter {
    public let store: ContentStore

    public init(store: ContentStore) {
        self.store = store
    }

    /// The digests of an imported image.
    public struct ImportedImage: Sendable, Equatable {
        public var manifest: Digest
        public var config: Digest
        public var layer: Digest
        public var diffID: Digest
    }

    public func importRootfs(
        tarballAt path: String, tag: String, platform: Platform = .linuxAMD64,
        containerConfig: ImageConfig.ContainerConfig? = nil, created: Date = Date()
    ) throws(ImageImportError) -> ImportedImage {
        do {
            try ContentStore.validateTag(tag)
        } catch {
            throw .store(error)
        }
        let descriptor: Int32
        do {
            descriptor = try Syscall.run("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
        } catch {
            throw .invalidTarball(path: path, .system(error, entry: nil))
        }
        defer { Syscall.close(descriptor) }

        let writer: BlobWriter
        let compression: LayerCompression
        do {
            compression = try LayerCompression.detect(descriptor: descriptor, path: path)
            writer = try store.makeWriter()
        } catch let error as LayerExtractionError {
            throw .invalidTarball(path: path, error)
        } catch {
            throw .store(error as! ContentStoreError)
        }
        let tee = TeeByteSource(source: FileByteSource(descriptor: descriptor, path: path), writer: writer)
        let diffID: Digest
        do {
            let stream: ByteSource = compression == .gzip ? try GzipByteSource(tee) : tee
            let reader = TarReader(source: stream)
            var entries = 0
            while let entry = try reader.next() {
                entries += 1
                _ = try LayerExtractor.clean(entry.path, entry: entry.displayPath)
                if entry.kind == .hardLink { _ = try LayerExtractor.clean(entry.linkName, entry: entry.displayPath) }
            }
            try reader.finish()
            // Read whatever follows the compressed stream so the stored blob is the whole file.
            try tee.drain()
            if entries == 0 {
                throw LayerExtractionError.truncated(entry: nil, reason: "the file holds no tar entries")
            }
            diffID = reader.diffID
        } catch {
            writer.abort()
            if let storeError = tee.storeError { throw .store(storeError) }
            throw .invalidTarball(path: path, error as? LayerExtractionError ?? .compression("\(error)"))
        }
        do {
            let layerSize = writer.writtenBytes
            let layer = try writer.commit()
            let formatter = ISO8601DateFormatter()
            let timestamp = formatter.string(from: created)
            var config = ImageConfig(architecture: platform.architecture, os: platform.os, config: containerConfig,
                                     rootfs: .init(diffIDs: [diffID]),
                                     history: [.init(created: timestamp, createdBy: "shoal image import",
                                                     comment: "imported from \((path as NSString).lastPathComponent)")],
                                     created: timestamp)
            config.variant = platform.variant
            let configBytes = ImageDocument.encode(config)
            let configDigest = try store.write(configBytes)
            let manifest = ImageManifest(
                config: Descriptor(mediaType: MediaType.ociConfig, digest: configDigest, size: Int64(configBytes.count)),
                layers: [Descriptor(mediaType: compression == .gzip ? MediaType.ociLayerGzip : MediaType.ociLayer,
                                    digest: layer, size: layerSize)])
            let manifestBytes = ImageDocument.encode(manifest)
            let manifestDigest = try store.write(manifestBytes)
            try store.addReferences(from: manifestDigest, to: [configDigest, layer])
            try store.tag(tag, to: manifestDigest)
            return ImportedImage(manifest: manifestDigest, config: configDigest, layer: layer, diffID: diffID)
        } catch {
            throw .store(error)
        }
    }
}

/// Passes bytes through from `source` and copies them into a blob writer.
final class TeeByteSource: ByteSource {
    private let source: ByteSource
    private let writer: BlobWriter
    /// Set when the store failed (disk full, size limit), to report it as such.
    private(set) var storeError: ContentStoreError?

    init(source: ByteSource, writer: BlobWriter) {
        self.source = source
        self.writer = writer
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(LayerExtractionError) -> Int {
        let count = try source.read(into: buffer)
        if count > 0 {
            do {
                try writer.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            } catch {
                storeError = error
                throw .compression("the content store refused the layer: \(error)")
            }
        }
        return count
    }

    func drain() throws(LayerExtractionError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while try read(into: buffer) > 0 {}
    }
}

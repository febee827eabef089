import Foundation
import Posix
#if canImport(Glibc)
import Glibc
#endif

/// `shoal image save`: writes images from a ``ContentStore`` into one tar, as
/// an OCI image layout or a docker-archive (``ImageArchiveFormat``), for
/// `shoal image load`, `docker load` or `skopeo copy oci-archive:`/`docker-archive:`.
///
/// The tar is written to a temporary file next to the destination, fsynced
/// and renamed over it, so a failed save leaves no partial archive. Blobs
/// shared by several images are written once.
public struct ImageArchiveWriter {
    /// One image to save: the manifest (or index) digest and the name to give
    /// it in the archive (nil for an image saved by digest).
    public struct Image: Sendable, Equatable {
        public var name: String?
        public var digest: Digest
        public init(name: String?, digest: Digest) {
            self.name = name
            self.digest = digest
        }
    }

    /// The OCI annotation holding an image's name in `index.json` (skopeo's
    /// `oci-archive:FILE:NAME` selects by it).
    public static let refNameAnnotation = "org.opencontainers.image.ref.name"
    /// containerd's (and Docker 25's) annotation for the full image name.
    public static let containerdNameAnnotation = "io.containerd.image.name"

    public let store: ContentStore

    public init(store: ContentStore) {
        self.store = store
    }

    /// Writes `images` to `path` in `format`; returns the archive's size in bytes.
    @discardableResult
    public func save(_ images: [Image], format: ImageArchiveFormat, to path: String) throws(ImageArchiveError) -> Int64 {
        guard !images.isEmpty else { throw .unsupported("nothing to save: name at least one image") }
        let temporary = path + ".tmp-" + UUID().uuidString.prefix(8).lowercased()
        let descriptor: Int32
        do {
            descriptor = try Syscall.run("open", path: temporary) {
                open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            }
        } catch {
            throw .system(error)
        }
        var installed = false
        defer {
            Syscall.close(descriptor)
            if !installed { _ = unlink(temporary) }
        }
        let tar = TarWriter(descriptor: descriptor, path: temporary)
        switch format {
        case .ociArchive: try writeOCILayout(images, into: tar)
        case .dockerArchive: try writeDockerArchive(images, into: tar)
        }
        do {
            try tar.finish()
            try Syscall.run("fsync", path: temporary) { fsync(descriptor) }
            try Syscall.run("rename", path: path) { rename(temporary, path) }
        } catch {
            throw .system(error)
        }
        installed = true
        return tar.writtenBytes
    }

    // MARK: OCI image layout

    private func writeOCILayout(_ images: [Image], into tar: TarWriter) throws(ImageArchiveError) {
        var entries: [Descriptor] = []
        var blobs: [Digest] = []
        var written: Set<Digest> = []
        func include(_ digest: Digest) {
            if written.insert(digest).inserted { blobs.append(digest) }
        }
        for image in images {
            let (bytes, document) = try readDocument(image.digest)
            var descriptor: Descriptor
            switch document {
            case .manifest(let manifest):
                try includeManifest(manifest, digest: image.digest, include: include)
                descriptor = Descriptor(mediaType: manifest.mediaType ?? MediaType.ociManifest, digest: image.digest, size: Int64(bytes.count))
            case .index(let index):
                var present = 0
                for child in index.manifests where MediaType.manifests.contains(child.mediaType) && store.contains(child.digest) {
                    guard case .manifest(let manifest) = try readDocument(child.digest).1 else { continue }
                    try includeManifest(manifest, digest: child.digest, include: include)
                    present += 1
                }
                guard present > 0 else {
                    throw .unsupported("index \(image.digest) has none of its manifests in the store: pull the image again before saving it")
                }
                include(image.digest)
                descriptor = Descriptor(mediaType: index.mediaType ?? MediaType.ociIndex, digest: image.digest, size: Int64(bytes.count))
            }
            if let name = image.name {
                descriptor.annotations = [Self.refNameAnnotation: name, Self.containerdNameAnnotation: name]
            }
            entries.append(descriptor)
        }
        do {
            try tar.addFile("oci-layout", bytes: Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))
            try tar.addFile("index.json", bytes: ImageDocument.encode(ImageIndex(manifests: entries)))
            try tar.addDirectory("blobs")
            try tar.addDirectory("blobs/sha256")
        } catch {
            throw .system(error)
        }
        for digest in blobs {
            try copyBlob(digest, as: "blobs/sha256/" + digest.hex, into: tar)
        }
    }

    /// Adds a manifest's config, layers and the manifest itself, all of which must be stored.
    private func includeManifest(_ manifest: ImageManifest, digest: Digest, include: (Digest) -> Void) throws(ImageArchiveError) {
        for blob in [manifest.config.digest] + manifest.layers.map(\.digest) where !store.contains(blob) {
            throw .store(.blobNotFound(blob))
        }
        include(manifest.config.digest)
        for layer in manifest.layers { include(layer.digest) }
        include(digest)
    }

    private func copyBlob(_ digest: Digest, as member: String, into tar: TarWriter) throws(ImageArchiveError) {
        let size: Int64
        let descriptor: Int32
        do {
            size = try store.size(of: digest)
            descriptor = try store.openBlob(digest)
        } catch {
            throw .store(error)
        }
        defer { Syscall.close(descriptor) }
        try tar.addFile(member, size: size, from: FileByteSource(descriptor: descriptor, path: store.path(for: digest)))
    }

    // MARK: docker-archive

    private func writeDockerArchive(_ images: [Image], into tar: TarWriter) throws(ImageArchiveError) {
        // One entry per manifest; its names are all the names it was saved under.
        var order: [Digest] = []
        var names: [Digest: [String]] = [:]
        var manifests: [Digest: ImageManifest] = [:]
        for image in images {
            let (digest, manifest) = try platformManifest(image.digest)
            if manifests[digest] == nil {
                order.append(digest)
                manifests[digest] = manifest
            }
            if let name = image.name, !name.contains("@"), !(names[digest]?.contains(name) ?? false) {
                names[digest, default: []].append(name)
            }
        }
        var entries: [DockerArchiveManifestEntry] = []
        var repositories: [String: [String: String]] = [:]
        var layerPlans: [(member: String, digest: Digest, compression: LayerCompression, uncompressedBytes: Int64)] = []
        var configs: [(member: String, digest: Digest)] = []
        var planned: Set<String> = []
        for digest in order {
            let manifest = manifests[digest]!
            let config: ImageConfig
            do {
                config = try ImageDocument.decodeConfig(try store.read(manifest.config.digest, maximumBytes: Int64(ImageDocument.maximumConfigBytes)))
            } catch let error as ContentStoreError {
                throw .store(error)
            } catch {
                throw .invalidDocument(member: "config \(manifest.config.digest)", reason: "\(error)")
            }
            guard config.rootfs.diffIDs.count == manifest.layers.count else {
                throw .invalidDocument(member: "config \(manifest.config.digest)",
                                       reason: "it lists \(config.rootfs.diffIDs.count) diff IDs for \(manifest.layers.count) layers")
            }
            let configMember = manifest.config.digest.hex + ".json"
            if planned.insert(configMember).inserted { configs.append((configMember, manifest.config.digest)) }
            var layerMembers: [String] = []
            for (layer, diffID) in zip(manifest.layers, config.rootfs.diffIDs) {
                let member = diffID.hex + ".tar"
                layerMembers.append(member)
                guard planned.insert(member).inserted else { continue }
                let compression: LayerCompression
                do {
                    compression = try LayerCompression(mediaType: layer.mediaType)
                } catch {
                    throw .unreadableBlob(member: member, error)
                }
                let uncompressedBytes = try verifyDiffID(layer.digest, compression: compression, diffID: diffID, member: member)
                layerPlans.append((member, layer.digest, compression, uncompressedBytes))
            }
            let tags = names[digest] ?? []
            entries.append(DockerArchiveManifestEntry(Config: configMember, RepoTags: tags, Layers: layerMembers))
            for name in tags {
                let (repository, tag) = Self.splitTag(name)
                // Docker's legacy index: repository → tag → top layer ID.
                repositories[repository, default: [:]][tag] = config.rootfs.diffIDs.last?.hex ?? manifest.config.digest.hex
            }
        }
        do {
            try tar.addFile("manifest.json", bytes: ImageDocument.encode(entries))
            try tar.addFile("repositories", bytes: ImageDocument.encode(repositories))
            for (member, digest) in configs {
                try tar.addFile(member, bytes: try store.read(digest, maximumBytes: Int64(ImageDocument.maximumConfigBytes)))
            }
        } catch let error as SystemError {
            throw .system(error)
        } catch {
            throw .store(ContentStore.wrap(error))
        }
        for plan in layerPlans {
            switch plan.compression {
            case .none:
                try copyBlob(plan.digest, as: plan.member, into: tar)
            case .gzip:
                try withLayerStream(plan.digest, compression: .gzip, member: plan.member) { source throws(ImageArchiveError) in
                    try tar.addFile(plan.member, size: plan.uncompressedBytes, from: source)
                }
            }
        }
    }

    /// Reads the layer uncompressed once: checks it hashes to `diffID` and
    /// returns its size (a tar header needs the size before the data).
    private func verifyDiffID(_ digest: Digest, compression: LayerCompression, diffID: Digest, member: String) throws(ImageArchiveError) -> Int64 {
        if compression == .none {
            guard digest == diffID else { throw .diffIDMismatch(member: member, expected: diffID, actual: digest) }
            do { return try store.size(of: digest) } catch { throw .store(error) }
        }
        let hasher = SHA256Hasher()
        try withLayerStream(digest, compression: compression, member: member) { source throws(ImageArchiveError) in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let count: Int
                do throws(LayerExtractionError) { count = try source.read(into: buffer) } catch { throw .unreadableBlob(member: member, error) }
                if count == 0 { break }
                hasher.update(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            }
        }
        let size = hasher.byteCount
        let actual = hasher.finish()
        guard actual == diffID else { throw .diffIDMismatch(member: member, expected: diffID, actual: actual) }
        return size
    }

    private func withLayerStream(_ digest: Digest, compression: LayerCompression, member: String,
                                 _ body: (ByteSource) throws(ImageArchiveError) -> Void) throws(ImageArchiveError) {
        let descriptor: Int32
        do { descriptor = try store.openBlob(digest) } catch { throw .store(error) }
        defer { Syscall.close(descriptor) }
        let file = FileByteSource(descriptor: descriptor, path: store.path(for: digest))
        let source: ByteSource
        do {
            source = compression == .gzip ? try GzipByteSource(file) : file
        } catch {
            throw .unreadableBlob(member: member, error)
        }
        try body(source)
    }

    // MARK: Helpers

    private func readDocument(_ digest: Digest) throws(ImageArchiveError) -> ([UInt8], ImageDocument) {
        let bytes: [UInt8]
        do {
            bytes = try store.read(digest, maximumBytes: Int64(ImageDocument.maximumManifestBytes))
        } catch {
            throw .store(error)
        }
        do {
            return (bytes, try ImageDocument.decode(bytes))
        } catch {
            throw .invalidDocument(member: "manifest \(digest)", reason: "\(error)")
        }
    }

    /// The manifest to save for `digest`: itself, or an index's linux/amd64 manifest.
    private func platformManifest(_ digest: Digest) throws(ImageArchiveError) -> (Digest, ImageManifest) {
        switch try readDocument(digest).1 {
        case .manifest(let manifest):
            return (digest, manifest)
        case .index(let index):
            let chosen: Descriptor
            do { chosen = try index.manifest(for: .linuxAMD64) } catch {
                throw .unsupported("index \(digest): \(error); a docker-archive holds one platform's image")
            }
            guard case .manifest(let manifest) = try readDocument(chosen.digest).1 else {
                throw .invalidDocument(member: "manifest \(chosen.digest)", reason: "an index entry for linux/amd64 is not an image manifest")
            }
            return (chosen.digest, manifest)
        }
    }

    /// `registry:5000/web:1` → (`registry:5000/web`, `1`); no tag → `latest`.
    static func splitTag(_ name: String) -> (String, String) {
        if let colon = name.lastIndex(of: ":"), !name[colon...].contains("/") {
            return (String(name[..<colon]), String(name[name.index(after: colon)...]))
        }
        return (name, "latest")
    }
}

import Foundation
import Posix
#if canImport(Glibc)
import Glibc
#endif

/// `shoal image load`: reads an image archive (a tar, optionally gzipped, or
/// an OCI image layout directory) into a ``ContentStore``. The format is
/// detected: `oci-layout` and `index.json` make an OCI image layout,
/// `manifest.json` a docker-archive.
///
/// Every member is hashed as it streams and staged (see
/// ``ImageArchiveStaging``); then every blob a manifest needs is checked
/// (present, size, digest; uncompressed layers and docker-archive layers
/// against the config's diff IDs; manifests and configs decoded). Only when
/// the whole archive passes are blobs installed and names tagged, so a bad,
/// corrupt or truncated archive leaves the store as it was.
public struct ImageArchiveLoader {
    /// One image the archive held.
    public struct LoadedImage: Sendable, Equatable {
        /// The names it is tagged under now; its manifest digest (`sha256:...`)
        /// when the archive gave no name, so it stays addressable (and out of prune's reach).
        public var names: [String]
        public var manifest: Digest
        /// A name the archive gave that is only a tag (OCI `ref.name` such as
        /// `latest`), when no repository was given to complete it.
        public var bareTag: String?
    }

    public struct Report: Sendable {
        public var format: ImageArchiveFormat
        public var images: [LoadedImage]
    }

    public let store: ContentStore

    public init(store: ContentStore) {
        self.store = store
    }

    /// Loads the archive at `path`. `repository` completes names that are
    /// only a tag (`latest` → `repository:latest`); `normalizeName` checks
    /// and completes each name (e.g. against Docker's reference grammar) and
    /// throws for a bad one, before anything is stored.
    public func load(from path: String, repository: String? = nil,
                     normalizeName: (String) throws -> String = { $0 }) throws(ImageArchiveError) -> Report {
        let staging = ImageArchiveStaging(store: store)
        try stage(path, into: staging)
        let format: ImageArchiveFormat
        var plans: [Plan]
        if staging.member("oci-layout") != nil && staging.member("index.json") != nil {
            format = .ociArchive
            plans = try planOCILayout(staging)
        } else if staging.member("manifest.json") != nil {
            format = .dockerArchive
            plans = try planDockerArchive(staging)
        } else {
            throw .unknownFormat(path: path, members: staging.order)
        }
        // Names are checked before anything is installed.
        for index in plans.indices {
            var names: [String] = []
            for name in plans[index].archiveNames {
                var candidate = name
                if Self.isBareTag(name) {
                    guard let repository else {
                        plans[index].bareTag = name
                        continue
                    }
                    candidate = repository + ":" + name
                }
                do {
                    names.append(try normalizeName(candidate))
                } catch {
                    throw .invalidName(candidate, reason: "\(error)")
                }
            }
            plans[index].names = names
        }
        var loaded: [LoadedImage] = []
        for plan in plans {
            for member in plan.members { try staging.install(member) }
            do {
                for (bytes, digest) in plan.documents { try store.write(bytes, expected: digest) }
                for (parent, children) in plan.references { try store.addReferences(from: parent, to: children) }
                let names = plan.names.isEmpty ? [plan.manifest.description] : plan.names
                for name in names { try store.tag(name, to: plan.manifest) }
                loaded.append(LoadedImage(names: names, manifest: plan.manifest, bareTag: plan.bareTag))
            } catch {
                throw .store(error)
            }
        }
        return Report(format: format, images: loaded)
    }

    /// What loading one image will store: staged members, documents Shoal
    /// wrote (a docker-archive's manifest), references, and the names.
    struct Plan {
        var manifest: Digest
        var members: [ImageArchiveStaging.Member] = []
        var documents: [([UInt8], Digest)] = []
        var references: [(Digest, [Digest])] = []
        var archiveNames: [String] = []
        var names: [String] = []
        var bareTag: String?
    }

    /// An OCI `ref.name` without repository (`latest`, `v1`): no `/` and no `:`.
    static func isBareTag(_ name: String) -> Bool {
        !name.contains("/") && !name.contains(":") && !name.contains("@")
    }

    // MARK: Reading

    private func stage(_ path: String, into staging: ImageArchiveStaging) throws(ImageArchiveError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw .system(SystemError(call: "stat", errno: errno, path: path))
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            try stageDirectory(path, into: staging)
            return
        }
        let descriptor: Int32
        do {
            descriptor = try Syscall.run("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
        } catch {
            throw .system(error)
        }
        defer { Syscall.close(descriptor) }
        let file = FileByteSource(descriptor: descriptor, path: path)
        let reader: TarReader
        do {
            let compressed = try LayerCompression.detect(descriptor: descriptor, path: path) == .gzip
            reader = TarReader(source: compressed ? try GzipByteSource(file) : file, hashing: false)
        } catch {
            throw .malformedArchive(path: path, error)
        }
        while true {
            let next: TarEntry?
            do { next = try reader.next() } catch { throw .malformedArchive(path: path, error) }
            guard let entry = next else { break }
            let name = entry.displayPath
            switch entry.kind {
            case .regular:
                try staging.addFile(name, size: entry.size) { sink throws(ImageArchiveError) in
                    var sinkError: ImageArchiveError?
                    do throws(LayerExtractionError) {
                        try reader.readData { chunk throws(LayerExtractionError) in
                            do throws(ImageArchiveError) { try sink(chunk) } catch {
                                sinkError = error
                                throw .compression("staging stopped")
                            }
                        }
                    } catch {
                        throw sinkError ?? .malformedArchive(path: path, error)
                    }
                }
            case .symbolicLink, .hardLink:
                staging.addLink(name, target: entry.displayLinkName, symbolic: entry.kind == .symbolicLink)
            default:
                continue
            }
        }
    }

    /// An OCI image layout directory (what umoci and `skopeo copy ... oci:DIR` write).
    private func stageDirectory(_ root: String, into staging: ImageArchiveStaging) throws(ImageArchiveError) {
        guard let enumerator = FileManager.default.enumerator(atPath: root) else {
            throw .system(SystemError(call: "opendir", errno: EACCES, path: root))
        }
        var names: [String] = []
        while let name = enumerator.nextObject() as? String { names.append(name) }
        for name in names.sorted() {
            let path = root + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else { throw .system(SystemError(call: "lstat", errno: errno, path: path)) }
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                let descriptor: Int32
                do {
                    descriptor = try Syscall.run("open", path: path) { open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) }
                } catch {
                    throw .system(error)
                }
                defer { Syscall.close(descriptor) }
                try staging.addFile(name, size: Int64(info.st_size)) { sink throws(ImageArchiveError) in
                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
                    defer { buffer.deallocate() }
                    var remaining = Int64(info.st_size)
                    while remaining > 0 {
                        let count: Int
                        do throws(SystemError) { count = try Syscall.read(descriptor, buffer, path: path) } catch { throw .system(error) }
                        if count == 0 { break }
                        let used = Int(min(Int64(count), remaining))
                        try sink(UnsafeRawBufferPointer(rebasing: buffer[..<used]))
                        remaining -= Int64(used)
                    }
                }
            case S_IFLNK:
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                    staging.addLink(name, target: target, symbolic: true)
                }
            default:
                continue
            }
        }
    }

    // MARK: OCI image layout

    private func planOCILayout(_ staging: ImageArchiveStaging) throws(ImageArchiveError) -> [Plan] {
        struct Layout: Decodable { var imageLayoutVersion: String }
        let layoutMember = staging.member("oci-layout")!
        let layoutBytes = try staging.bytes(of: layoutMember, limitBytes: 4096, neededBy: "oci-layout")
        guard let layout = try? JSONDecoder().decode(Layout.self, from: Data(layoutBytes)) else {
            throw .invalidDocument(member: "oci-layout", reason: "expected {\"imageLayoutVersion\":\"1.0.0\"}")
        }
        guard layout.imageLayoutVersion.hasPrefix("1.") else {
            throw .invalidDocument(member: "oci-layout", reason: "image layout version \(layout.imageLayoutVersion.prefix(20)) is not 1.x")
        }
        let indexBytes = try staging.bytes(of: staging.member("index.json")!, limitBytes: ImageDocument.maximumManifestBytes, neededBy: "index.json")
        let index: ImageIndex
        do {
            guard case .index(let decoded) = try ImageDocument.decode(indexBytes, mediaType: MediaType.ociIndex) else {
                throw ImageDocumentError.malformed(kind: "index", reason: "index.json holds a manifest, not an index")
            }
            index = decoded
        } catch {
            throw .invalidDocument(member: "index.json", reason: "\(error)")
        }
        guard !index.manifests.isEmpty else { throw .invalidDocument(member: "index.json", reason: "it lists no images") }
        var plans: [Plan] = []
        for descriptor in index.manifests {
            var plan = Plan(manifest: descriptor.digest)
            try planOCIDocument(descriptor, staging: staging, neededBy: "index.json", into: &plan)
            let annotations = descriptor.annotations ?? [:]
            if let name = annotations[ImageArchiveWriter.containerdNameAnnotation] ?? annotations[ImageArchiveWriter.refNameAnnotation] {
                plan.archiveNames = [name]
            }
            plans.append(plan)
        }
        return plans
    }

    /// The staged blob `descriptor` names, checked against its digest and size.
    private func ociBlob(_ descriptor: Descriptor, staging: ImageArchiveStaging, neededBy: String) throws(ImageArchiveError) -> ImageArchiveStaging.Member {
        let name = "blobs/sha256/" + descriptor.digest.hex
        guard let member = staging.member(name) else { throw .missingMember(name, neededBy: neededBy) }
        guard member.digest == descriptor.digest else { throw .digestMismatch(member: name, expected: descriptor.digest, actual: member.digest) }
        guard member.size == descriptor.size else { throw .sizeMismatch(member: name, expectedBytes: descriptor.size, actualBytes: member.size) }
        return member
    }

    /// Plans a manifest (config, layers) or an index (its manifests that the
    /// archive holds; an index may leave other platforms out).
    private func planOCIDocument(_ descriptor: Descriptor, staging: ImageArchiveStaging, neededBy: String, into plan: inout Plan) throws(ImageArchiveError) {
        let member = try ociBlob(descriptor, staging: staging, neededBy: neededBy)
        let name = member.path
        let bytes = try staging.bytes(of: member, limitBytes: ImageDocument.maximumManifestBytes, neededBy: "a manifest")
        let document: ImageDocument
        do { document = try ImageDocument.decode(bytes, mediaType: descriptor.mediaType) } catch {
            throw .invalidDocument(member: name, reason: "\(error)")
        }
        switch document {
        case .manifest(let manifest):
            let configMember = try ociBlob(manifest.config, staging: staging, neededBy: "manifest \(descriptor.digest)")
            let config = try decodeConfig(configMember, staging: staging)
            guard config.rootfs.diffIDs.count == manifest.layers.count else {
                throw .invalidDocument(member: configMember.path, reason: "it lists \(config.rootfs.diffIDs.count) diff IDs for the manifest's \(manifest.layers.count) layers")
            }
            var children = [manifest.config.digest]
            plan.members.append(configMember)
            for (layer, diffID) in zip(manifest.layers, config.rootfs.diffIDs) {
                let layerMember = try ociBlob(layer, staging: staging, neededBy: "manifest \(descriptor.digest)")
                // An uncompressed layer's digest is its diff ID; compressed ones are checked when extracted.
                if MediaType.layers[layer.mediaType] == false && layer.digest != diffID {
                    throw .diffIDMismatch(member: layerMember.path, expected: diffID, actual: layer.digest)
                }
                plan.members.append(layerMember)
                children.append(layer.digest)
            }
            plan.members.append(member)
            plan.references.append((descriptor.digest, children))
        case .index(let index):
            var children: [Digest] = []
            for child in index.manifests where staging.member("blobs/sha256/" + child.digest.hex) != nil {
                try planOCIDocument(child, staging: staging, neededBy: "index \(descriptor.digest)", into: &plan)
                children.append(child.digest)
            }
            guard !children.isEmpty else {
                throw .missingMember("any manifest of index \(descriptor.digest)", neededBy: neededBy)
            }
            plan.members.append(member)
            plan.references.append((descriptor.digest, children))
        }
    }

    private func decodeConfig(_ member: ImageArchiveStaging.Member, staging: ImageArchiveStaging) throws(ImageArchiveError) -> ImageConfig {
        let bytes = try staging.bytes(of: member, limitBytes: ImageDocument.maximumConfigBytes, neededBy: "an image config")
        do {
            return try ImageDocument.decodeConfig(bytes)
        } catch {
            throw .invalidDocument(member: member.path, reason: "\(error)")
        }
    }

    // MARK: docker-archive

    private func planDockerArchive(_ staging: ImageArchiveStaging) throws(ImageArchiveError) -> [Plan] {
        let manifestBytes = try staging.bytes(of: staging.member("manifest.json")!, limitBytes: ImageDocument.maximumManifestBytes, neededBy: "manifest.json")
        let entries: [DockerArchiveManifestEntry]
        do {
            entries = try JSONDecoder().decode([DockerArchiveManifestEntry].self, from: Data(manifestBytes))
        } catch {
            throw .invalidDocument(member: "manifest.json", reason: "expected [{\"Config\":..., \"RepoTags\":[...], \"Layers\":[...]}]: \(error)")
        }
        guard !entries.isEmpty else { throw .invalidDocument(member: "manifest.json", reason: "it lists no images") }
        var plans: [Plan] = []
        for entry in entries {
            guard let configMember = staging.member(entry.Config) else { throw .missingMember(entry.Config, neededBy: "manifest.json") }
            if let named = Self.digestInName(entry.Config), named != configMember.digest {
                throw .digestMismatch(member: entry.Config, expected: named, actual: configMember.digest)
            }
            let config = try decodeConfig(configMember, staging: staging)
            guard config.rootfs.diffIDs.count == entry.Layers.count else {
                throw .invalidDocument(member: entry.Config, reason: "it lists \(config.rootfs.diffIDs.count) diff IDs for manifest.json's \(entry.Layers.count) layers")
            }
            var plan = Plan(manifest: configMember.digest)
            plan.members.append(configMember)
            var layers: [Descriptor] = []
            for (layerName, diffID) in zip(entry.Layers, config.rootfs.diffIDs) {
                guard let layerMember = staging.member(layerName) else { throw .missingMember(layerName, neededBy: "manifest.json") }
                let compression = try staging.withStream(layerMember) { source throws(ImageArchiveError) in
                    let prefix = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 4)
                    defer { prefix.deallocate() }
                    do throws(LayerExtractionError) {
                        let count = try source.read(into: prefix)
                        return try LayerCompression.detect(Array(prefix[..<count]))
                    } catch {
                        throw .malformedArchive(path: layerName, error)
                    }
                }
                let uncompressed = compression == .none ? layerMember.digest : try uncompressedDigest(layerMember, staging: staging)
                guard uncompressed == diffID else { throw .diffIDMismatch(member: layerName, expected: diffID, actual: uncompressed) }
                layers.append(Descriptor(mediaType: compression == .none ? MediaType.ociLayer : MediaType.ociLayerGzip,
                                         digest: layerMember.digest, size: layerMember.size))
                plan.members.append(layerMember)
            }
            let manifest = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: configMember.digest, size: configMember.size),
                                         layers: layers)
            let bytes = ImageDocument.encode(manifest)
            plan.manifest = Digest.of(bytes)
            plan.documents = [(bytes, plan.manifest)]
            plan.references = [(plan.manifest, [configMember.digest] + layers.map(\.digest))]
            plan.archiveNames = entry.RepoTags ?? []
            plans.append(plan)
        }
        return plans
    }

    /// The SHA-256 of a gzip-compressed member's uncompressed bytes.
    private func uncompressedDigest(_ member: ImageArchiveStaging.Member, staging: ImageArchiveStaging) throws(ImageArchiveError) -> Digest {
        try staging.withStream(member) { file throws(ImageArchiveError) in
            let hasher = SHA256Hasher()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            do throws(LayerExtractionError) {
                let source = try GzipByteSource(file)
                while true {
                    let count = try source.read(into: buffer)
                    if count == 0 { break }
                    hasher.update(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                }
            } catch {
                throw .malformedArchive(path: member.path, error)
            }
            return hasher.finish()
        }
    }

    /// The digest a docker-archive member's name carries (`<hex>.json`, `blobs/sha256/<hex>`), if any.
    static func digestInName(_ name: String) -> Digest? {
        var last = String(name.split(separator: "/").last ?? "")
        if last.hasSuffix(".json") { last.removeLast(5) }
        return try? Digest(parsing: "sha256:" + last)
    }
}

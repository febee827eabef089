import Foundation
import Images
import Net
import Registry

/// `shoal image pull|push|tag|rm|prune|inspect` on the node's content store
/// (`DIR/images`, DIR as the daemon's `--data`, /var/lib/shoal by default,
/// the store `shoal image import` and the agent use).
///
/// Pulled images are tagged under their full name (`127.0.0.1:5000/web:1`)
/// and, when the reference named no registry, also as typed (`web:1`), which
/// is how a service spec names them.
enum ImageCommands {
    static let usage = """
        shoal image pull REF [--platform linux/amd64]   pull an image from a registry (progress per layer)
          image push NAME [REF] [--chunk-size BYTES] push a local image (to REF, default: its name)
          image tag SOURCE TARGET                    add a name to a local image
          image rm NAME ...                          remove names (blobs go with image prune)
          image prune                                remove blobs no name reaches
          image inspect NAME                         print the manifest and config
          image history NAME [--format table|json] [--no-trunc]
                                                     the build steps, newest first
          image save -o FILE [--format oci-archive|docker-archive] NAME ...
                                                     write images to a tar (default oci-archive)
          image load -i FILE|DIR [--name REPOSITORY]  read images from a save, docker save or skopeo
                                                     archive (format detected) or an OCI layout directory;
                                                     --name completes names that are only a tag
            common: [--data DIR] [--user USER:PASSWORD] [--insecure-registry HOST:PORT ...] [--ca FILE]
            references: [registry[:port]/]name[:tag][@sha256:...]; default registry $SHOAL_DEFAULT_REGISTRY or \(ImageReference.shoalDefaultRegistry)
        """
    static let subcommands: Set<String> = ["pull", "push", "tag", "rm", "prune", "inspect", "history", "save", "load"]

    static func run(_ rest: [String]) -> Int32 {
        ClusterCommands.blocking {
            do {
                return try await runThrowing(rest)
            } catch {
                FileHandle.standardError.write(Data("shoal image: \(error)\n".utf8))
                return 1
            }
        }
    }

    static var defaultRegistry: String {
        ProcessInfo.processInfo.environment["SHOAL_DEFAULT_REGISTRY"] ?? ImageReference.shoalDefaultRegistry
    }

    static func runThrowing(_ rest: [String]) async throws -> Int32 {
        let arguments = try ClusterCommands.Arguments(rest, switches: ["--no-trunc"])
        let data = arguments.value("--data") ?? "/var/lib/shoal"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let store = try ContentStore(root: data + "/images")
        let positional = Array(arguments.positional.dropFirst())
        func usageFailure() -> ClusterCommands.Failure { ClusterCommands.Failure(description: "usage: \(usage)") }
        switch arguments.positional.first {
        case "pull":
            guard positional.count == 1 else { throw usageFailure() }
            let reference = try ImageReference(parsing: positional[0], defaultRegistry: defaultRegistry)
            var platform = Platform.linuxAMD64
            if let text = arguments.value("--platform") {
                let parts = text.split(separator: "/").map(String.init)
                guard parts.count >= 2 else { throw ClusterCommands.Failure(description: "--platform is OS/ARCH[/VARIANT], e.g. linux/amd64") }
                platform = Platform(architecture: parts[1], os: parts[0], variant: parts.count > 2 ? parts[2] : nil)
            }
            let client = try makeClient(arguments)
            let printer = ProgressPrinter(verb: .pull)
            print("\(reference.tag ?? reference.digest?.description ?? "latest"): Pulling from \(reference.name)")
            let started = ContinuousClock.now
            let result = try await client.pull(reference, into: store, platform: platform) { printer.update($0) }
            printer.finish()
            if !hasExplicitRegistry(positional[0]) {
                // As typed, too: a service spec names the image this way.
                let typed = positional[0].contains(":") || positional[0].contains("@") ? positional[0] : positional[0] + ":latest"
                if typed != reference.localTag { try store.tag(typed, to: result.manifest) }
            }
            let seconds = secondsSince(started)
            print("Digest: \(result.index ?? result.manifest)")
            print("Status: \(result.downloadedBytes > 0 ? "Downloaded newer image" : "Image is up to date") for \(reference) "
                  + "(\(formatBytes(result.downloadedBytes)) in \(String(format: "%.2f", seconds)) s)")
            await client.shutdown()
            return 0
        case "push":
            guard positional.count == 1 || positional.count == 2 else { throw usageFailure() }
            let (localName, digest) = try resolveLocal(store, positional[0])
            let target = try ImageReference(parsing: positional.count == 2 ? positional[1] : positional[0], defaultRegistry: defaultRegistry)
            var configuration = try clientConfiguration(arguments)
            if let chunk = arguments.value("--chunk-size") {
                guard let bytes = Int(chunk), bytes > 0 else { throw ClusterCommands.Failure(description: "--chunk-size is a positive byte count") }
                configuration.uploadChunkBytes = bytes
            }
            let client = RegistryClient(configuration: configuration)
            let printer = ProgressPrinter(verb: .push)
            print("The push refers to repository [\(target.name)] (local image \(localName))")
            let started = ContinuousClock.now
            let result = try await client.push(from: store, manifest: digest, to: target) { printer.update($0) }
            printer.finish()
            print("\(target.tag ?? "latest"): digest: \(result.manifest) (\(formatBytes(result.uploadedBytes)) uploaded in "
                  + "\(String(format: "%.2f", secondsSince(started))) s, \(result.existingBlobs) existing, \(result.mountedBlobs) mounted)")
            await client.shutdown()
            return 0
        case "tag":
            guard positional.count == 2 else { throw usageFailure() }
            let (_, digest) = try resolveLocal(store, positional[0])
            try store.tag(try localName(positional[1]), to: digest)
            return 0
        case "rm", "remove":
            guard !positional.isEmpty else { throw usageFailure() }
            var failed = false
            for name in positional {
                if let (key, _) = try? resolveLocal(store, name), try store.removeTag(key) {
                    print("Untagged: \(key)")
                } else {
                    FileHandle.standardError.write(Data("shoal image rm: no image \(name)\n".utf8))
                    failed = true
                }
            }
            return failed ? 1 : 0
        case "prune":
            // Blobs younger than a minute may belong to a pull still in progress.
            let report = try store.prune(minimumAgeSeconds: 60)
            for digest in report.removed { print("Deleted: \(digest)") }
            print("Total reclaimed space: \(formatBytes(report.reclaimedBytes))")
            return 0
        case "inspect":
            guard positional.count == 1 else { throw usageFailure() }
            let (name, digest) = try resolveLocal(store, positional[0])
            let bytes = try store.read(digest, maximumBytes: Int64(ImageDocument.maximumManifestBytes))
            print("Name: \(name)\nDigest: \(digest)\nManifest: \(String(decoding: bytes, as: UTF8.self))")
            if case .manifest(let manifest) = try ImageDocument.decode(bytes) {
                let config = try store.read(manifest.config.digest, maximumBytes: Int64(ImageDocument.maximumConfigBytes))
                print("Config: \(String(decoding: config, as: UTF8.self))")
            }
            return 0
        case "save":
            guard let output = arguments.value("-o") ?? arguments.value("--output") else {
                throw ClusterCommands.Failure(description: "image save needs -o FILE (the archive is not written to the terminal)")
            }
            guard !positional.isEmpty else { throw usageFailure() }
            let formatName = arguments.value("--format") ?? ImageArchiveFormat.ociArchive.rawValue
            guard let format = ImageArchiveFormat(name: formatName) else {
                throw ClusterCommands.Failure(description: "--format must be oci-archive or docker-archive, not \(formatName.debugDescription)")
            }
            var images: [ImageArchiveWriter.Image] = []
            for name in positional {
                let (key, digest) = try resolveLocal(store, name)
                // An image found by digest is saved without a name.
                images.append(ImageArchiveWriter.Image(name: key.hasPrefix("sha256:") ? nil : key, digest: digest))
            }
            let bytes = try ImageArchiveWriter(store: store).save(images, format: format, to: output)
            print("Saved \(images.count) image\(images.count == 1 ? "" : "s") to \(output) (\(format.rawValue), \(formatBytes(bytes)))")
            return 0
        case "load":
            guard let input = arguments.value("-i") ?? arguments.value("--input"), positional.isEmpty else {
                throw ClusterCommands.Failure(description: "image load needs -i FILE (an image archive) or -i DIR (an OCI image layout)")
            }
            let repository = arguments.value("--name")
            if let repository {
                let reference = try ImageReference(parsing: repository, defaultRegistry: defaultRegistry)
                guard reference.tag == "latest", reference.digest == nil, !repository.hasSuffix(":latest") else {
                    throw ClusterCommands.Failure(description: "--name takes a repository without tag or digest, e.g. --name busybox")
                }
            }
            let report = try ImageArchiveLoader(store: store).load(from: input, repository: repository) { try localName($0) }
            for image in report.images {
                if image.names == [image.manifest.description] {
                    var line = "Loaded image ID: \(image.manifest)"
                    if let tag = image.bareTag {
                        line += " (the archive names it only \(tag.debugDescription): load with --name REPOSITORY to tag it REPOSITORY:\(tag))"
                    }
                    print(line)
                } else {
                    for name in image.names { print("Loaded image: \(name)") }
                }
            }
            return 0
        case "history":
            guard positional.count == 1 else { throw usageFailure() }
            let format = arguments.value("--format") ?? "table"
            guard format == "table" || format == "json" else {
                throw ClusterCommands.Failure(description: "--format must be table or json (templates are not supported)")
            }
            let (_, digest) = try resolveLocal(store, positional[0])
            let (manifestDigest, manifest) = try localManifest(store, digest)
            let config = try ImageDocument.decodeConfig(try store.read(manifest.config.digest, maximumBytes: Int64(ImageDocument.maximumConfigBytes)))
            printHistory(ImageHistory(manifest: manifest, manifestDigest: manifestDigest, config: config),
                         json: format == "json", truncate: !arguments.switches.contains("--no-trunc"))
            return 0
        default:
            throw usageFailure()
        }
    }

    /// The image manifest `digest` names; for an index, the linux/amd64
    /// manifest (the one a pull stored).
    static func localManifest(_ store: ContentStore, _ digest: Digest) throws -> (Digest, ImageManifest) {
        let bytes = try store.read(digest, maximumBytes: Int64(ImageDocument.maximumManifestBytes))
        switch try ImageDocument.decode(bytes) {
        case .manifest(let manifest):
            return (digest, manifest)
        case .index(let index):
            let chosen = try index.manifest(for: .linuxAMD64)
            let child = try store.read(chosen.digest, maximumBytes: Int64(ImageDocument.maximumManifestBytes))
            guard case .manifest(let manifest) = try ImageDocument.decode(child, mediaType: chosen.mediaType) else {
                throw ClusterCommands.Failure(description: "\(chosen.digest) in index \(digest) is not an image manifest")
            }
            return (chosen.digest, manifest)
        }
    }

    /// `docker history`'s table, or one JSON object per line with its keys.
    static func printHistory(_ history: ImageHistory, json: Bool, truncate: Bool) {
        let now = Date()
        if json {
            struct Line: Encodable {
                var ID, CreatedAt, CreatedSince, CreatedBy, Size, Comment: String
                var SizeBytes: Int64
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for row in history.rows {
                let line = Line(ID: row.id?.description ?? "<missing>", CreatedAt: ImageHistory.timestamp(row.created),
                                CreatedSince: ImageHistory.since(row.created, now: now), CreatedBy: row.createdBy,
                                Size: ImageHistory.humanSize(row.sizeBytes), Comment: row.comment, SizeBytes: row.sizeBytes)
                print(String(decoding: (try? encoder.encode(line)) ?? Data(), as: UTF8.self))
            }
            return
        }
        let createdByWidth = 45
        ClusterCommands.printTable(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], history.rows.map { row in
            var createdBy = row.createdBy.replacingOccurrences(of: "\n", with: " ")
            if truncate && createdBy.count > createdByWidth { createdBy = String(createdBy.prefix(createdByWidth - 1)) + "…" }
            let id = row.id.map { truncate ? String($0.hex.prefix(12)) : $0.description } ?? "<missing>"
            return [id, ImageHistory.since(row.created, now: now), createdBy, ImageHistory.humanSize(row.sizeBytes), row.comment]
        })
    }

    /// The name a local image is stored under, as typed with `:latest` added
    /// when it has neither tag nor digest; throws for a reference that breaks
    /// Docker's grammar or names a digest (a name given to an image cannot
    /// pin content).
    static func localName(_ text: String) throws -> String {
        try ImageReference.localName(text, defaultRegistry: defaultRegistry)
    }

    /// Whether the text names a registry (`host.domain/`, `host:port/`, `localhost/`).
    static func hasExplicitRegistry(_ text: String) -> Bool {
        guard let slash = text.firstIndex(of: "/") else { return false }
        let first = text[..<slash]
        return first.contains(".") || first.contains(":") || first == "localhost"
    }

    /// Finds a local image: as typed, with `:latest`, or by its full normalized name, or by digest.
    static func resolveLocal(_ store: ContentStore, _ name: String) throws -> (String, Digest) {
        var candidates = [name]
        if !name.contains("@"), !(name.split(separator: "/").last ?? "").contains(":") { candidates.append(name + ":latest") }
        if let reference = try? ImageReference(parsing: name, defaultRegistry: defaultRegistry) { candidates.append(reference.localTag) }
        for candidate in candidates {
            if let digest = try store.resolve(tag: candidate) { return (candidate, digest) }
        }
        if let digest = try? Digest(parsing: name), store.contains(digest) { return (name, digest) }
        throw RegistryClientError.localImageNotFound(name)
    }

    static func clientConfiguration(_ arguments: ClusterCommands.Arguments) throws -> RegistryClient.Configuration {
        var configuration = RegistryClient.Configuration()
        let environment = ProcessInfo.processInfo.environment
        if let user = arguments.value("--user") {
            guard let credentials = RegistryAuthenticator.parseUser(user) else {
                throw ClusterCommands.Failure(description: "--user needs USER:PASSWORD")
            }
            configuration.credentials = credentials
        } else if let user = environment["SHOAL_REGISTRY_USER"], let password = environment["SHOAL_REGISTRY_PASSWORD"] {
            configuration.credentials = (user, password)
        }
        configuration.insecureRegistries = Set(arguments.all("--insecure-registry"))
        if let caPath = arguments.value("--ca") {
            let ca = try Certificate.read(fromFile: caPath)
            configuration.tls = try TLSContext(TLSConfiguration(certificateChain: [], privateKey: nil, trustedRoots: [ca]), side: .client)
        }
        return configuration
    }

    static func makeClient(_ arguments: ClusterCommands.Arguments) throws -> RegistryClient {
        RegistryClient(configuration: try clientConfiguration(arguments))
    }

    static func secondsSince(_ start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    static func formatBytes(_ bytes: Int64) -> String {
        let value = Double(bytes)
        let kib = 1024.0, mib = kib * 1024, gib = mib * 1024
        if value >= gib { return String(format: "%.2f GiB", value / gib) }
        if value >= mib { return String(format: "%.1f MiB", value / mib) }
        if value >= kib { return String(format: "%.1f KiB", value / kib) }
        return "\(bytes) B"
    }
}

/// Per-layer progress as docker prints it: on a terminal one line per blob,
/// redrawn in place (at most ``redrawInterval`` apart); otherwise plain lines
/// at each state change and every quarter of a blob.
final class ProgressPrinter: @unchecked Sendable {
    enum Verb { case pull, push }

    static let redrawInterval: Duration = .milliseconds(100)
    private let verb: Verb
    private let terminal = isatty(STDOUT_FILENO) == 1
    private let lock = NSLock()
    private var order: [Digest] = []
    private var lines: [Digest: String] = [:]
    private var quarters: [Digest: Int64] = [:]
    private var drawnLines = 0
    private var lastDraw = ContinuousClock.now - .seconds(1)

    init(verb: Verb) {
        self.verb = verb
    }

    func update(_ progress: BlobProgress) {
        lock.withLock {
            let short = String(progress.digest.hex.prefix(12))
            let total = ImageCommands.formatBytes(progress.totalBytes)
            let line: String
            switch progress.state {
            case .waiting: line = "\(short): Waiting"
            case .alreadyExists: line = "\(short): \(verb == .pull ? "Already exists" : "Layer already exists")"
            case .mounted: line = "\(short): Mounted from another repository"
            case .transferring:
                let done = ImageCommands.formatBytes(progress.completedBytes)
                line = "\(short): \(verb == .pull ? "Downloading" : "Pushing") \(bar(progress)) \(done)/\(total)"
            case .complete: line = "\(short): \(verb == .pull ? "Pull complete" : "Pushed") \(total)"
            }
            if lines[progress.digest] == nil { order.append(progress.digest) }
            let changedState = lines[progress.digest].map { !$0.hasPrefix(line.prefix(20)) } ?? true
            lines[progress.digest] = line
            if terminal {
                if ContinuousClock.now - lastDraw >= Self.redrawInterval || progress.state != .transferring { redraw() }
            } else {
                let quarter = progress.totalBytes > 0 ? progress.completedBytes * 4 / progress.totalBytes : 0
                if progress.state != .transferring || changedState || quarter != quarters[progress.digest] {
                    quarters[progress.digest] = quarter
                    print(line)
                }
            }
        }
    }

    private func bar(_ progress: BlobProgress) -> String {
        let width = 30
        let filled = progress.totalBytes > 0 ? Int(progress.completedBytes * Int64(width) / progress.totalBytes) : 0
        return "[" + String(repeating: "=", count: max(0, filled - 1)) + (filled > 0 ? ">" : "") + String(repeating: " ", count: width - filled) + "]"
    }

    /// Must hold `lock`.
    private func redraw() {
        var output = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
        for digest in order { output += "\u{1B}[2K" + (lines[digest] ?? "") + "\n" }
        drawnLines = order.count
        lastDraw = .now
        FileHandle.standardOutput.write(Data(output.utf8))
    }

    func finish() {
        lock.withLock { if terminal { redraw() } }
        fflush(nil)
    }
}

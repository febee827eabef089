import Foundation
import Images
import Registry
import Runtime
#if canImport(Glibc)
import Glibc
#endif

extension ContainerEngine {
    /// `docker commit`: the container's writable layer (whiteouts for what
    /// it deleted) becomes a gzip layer on top of the image it was created
    /// from; the new config is the image's with the container's command,
    /// entrypoint, environment, user, working directory and health check,
    /// then `changes`. A running container is frozen while its files are
    /// read (unless `pause` is false) and thawed before the layer is
    /// compressed. Everything is checked before the container is touched,
    /// and the tag is written last: a failure tags nothing.
    func commit(_ key: String, _ request: ContainerCommitRequest) async throws -> ContainerCommitReply {
        let record = try resolve(key)
        let container = try self.container(record)
        let tag = try request.reference.map { text -> String in
            do {
                return try ImageReference.localName(text, defaultRegistry: images.defaultRegistry)
            } catch {
                throw APIError.invalid("reference", "\(error)")
            }
        }
        let changes = request.changes ?? []
        do {
            _ = try ImageChange.apply(changes)
        } catch {
            throw APIError.invalid("--change", "\(error)")
        }
        let spec = container.state.spec
        guard case .overlay(let lowerDirectories, _, _, _) = spec.rootFilesystem else {
            throw Self.apiError(RuntimeError.noWritableLayer(id: record.id, operation: "commit"), name: record.name)
        }
        let parent = try await parentManifest(record, lowerDirectories: lowerDirectories)

        let spool = try Self.spoolFile(in: root)
        defer { close(spool) }
        let pause = request.pause ?? true
        do {
            try await Self.blocking { [runtime] in
                var frozen = false
                if pause, container.state.status == .running {
                    try runtime.pause(record.id)
                    frozen = true
                }
                defer { if frozen { try? runtime.unpause(record.id) } }
                try runtime.exportChanges(record.id, to: spool)
            }
        } catch {
            throw Self.apiError(error, name: record.name)
        }
        lseek(spool, 0, SEEK_SET)

        let commit = ImageCommitter.Commit(parent: parent, tag: tag, author: request.author, comment: request.comment,
                                           createdBy: (record.entrypoint + record.cmd).joined(separator: " "), changes: changes)
        let store = images.local.store
        let committed: ImageCommitter.CommittedImage
        do {
            committed = try await Self.blocking {
                try ImageCommitter(store: store).commit(layerTar: spool, commit) { config in
                    Self.applyContainerSettings(record, spec: spec, to: &config)
                }
            }
        } catch let error as ImageCommitError {
            switch error {
            case .change: throw APIError.invalid("--change", "\(error)")
            case .parentMissing, .parentUnreadable:
                throw APIError(status: 409, code: "image_gone", message: "cannot commit container \(record.name): \(error)",
                               hint: "export its files instead: `shoal container export -o FILE \(record.name)`")
            case .layerUnreadable, .store:
                throw APIError(status: 500, code: "commit_failed", message: "cannot commit container \(record.name): \(error)",
                               hint: "check the daemon's data directory (free space, permissions); nothing was tagged")
            }
        }
        return ContainerCommitReply(id: committed.manifest.description, reference: tag, layerBytes: committed.layerBytes,
                                    uncompressedBytes: committed.uncompressedBytes)
    }

    /// What the container was created with replaces the image's settings,
    /// as `docker commit` keeps the container's config.
    static func applyContainerSettings(_ record: Record, spec: ContainerSpec, to config: inout ImageConfig.ContainerConfig) {
        config.entrypoint = record.entrypoint.isEmpty ? nil : record.entrypoint
        config.cmd = record.cmd.isEmpty ? nil : record.cmd
        config.env = spec.environment.isEmpty ? nil : spec.environment
        if let user = spec.user { config.user = user }
        if let directory = spec.workingDirectory { config.workingDir = directory }
        if record.request.noHealthcheck == true {
            config.healthcheck = HealthConfig(test: ["NONE"])
        } else if let check = spec.healthCheck, record.request.healthCommand != nil {
            config.healthcheck = healthConfig(check)
        }
    }

    /// The image manifest the container was created from: recorded at
    /// create, or (for containers created before that) the image its name
    /// gives now, when its layers are still the container's.
    func parentManifest(_ record: Record, lowerDirectories: [String]) async throws -> Digest {
        if let text = record.imageDigest, let digest = try? Digest(parsing: text) { return digest }
        let gone = APIError(status: 409, code: "image_gone",
                            message: "cannot commit container \(record.name): the image it was created from (\(record.image)) is no longer in the content store under that name",
                            hint: "export its files instead: `shoal container export -o FILE \(record.name)`")
        guard let image = try? await images.local.prepare(reference: record.image), let digest = image.manifestDigest,
              image.lowerDirectories == lowerDirectories else { throw gone }
        return digest
    }

    /// An unlinked temporary file in `directory` (gone with its descriptor,
    /// whatever happens), on the data directory's file system.
    static func spoolFile(in directory: String) throws -> Int32 {
        var name = Array((directory + "/spool-XXXXXX").utf8CString)
        let descriptor = mkstemp(&name)
        guard descriptor >= 0 else {
            throw APIError(status: 500, code: "runtime_failed",
                           message: "cannot create a temporary file in \(directory): \(String(cString: strerror(errno)))",
                           hint: "check that the daemon's data directory is writable and has room")
        }
        unlink(name)
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        return descriptor
    }
}

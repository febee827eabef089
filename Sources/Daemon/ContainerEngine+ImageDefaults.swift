import Agent
import Foundation
import Images
import Runtime
#if canImport(Glibc)
import Glibc
#endif

extension ContainerEngine {
    /// The container's health check, as Docker decides it: `--no-healthcheck`
    /// turns checks off (and excludes the `--health-*` options); else
    /// `--health-cmd` or the image's HEALTHCHECK gives the command
    /// (`HEALTHCHECK NONE` gives none), and each timing comes from its
    /// option, else the image, else Docker's default.
    static func healthCheck(_ request: ContainerCreateRequest, image: HealthConfig?) throws -> HealthCheck? {
        let timingGiven = request.healthInterval != nil || request.healthTimeout != nil || request.healthStartPeriod != nil
            || request.healthRetries != nil
        if request.noHealthcheck == true {
            if request.healthCommand != nil || timingGiven {
                throw APIError.invalid("--no-healthcheck", "it conflicts with the --health-* options: give one or the other")
            }
            return nil
        }
        var check: HealthCheck
        if let command = request.healthCommand {
            guard !command.isEmpty else { throw APIError.invalid("--health-cmd", "give the command that exits 0 when the container is healthy") }
            check = HealthCheck(command: ["sh", "-c", command])
        } else if let image, !image.disablesChecks, let command = image.command {
            check = HealthCheck(command: command)
        } else {
            if timingGiven {
                throw APIError.invalid("--health-cmd", "the other --health-* options need a health check: give --health-cmd (the image has no HEALTHCHECK)")
            }
            return nil
        }
        // The image's timings apply to its own command and to --health-cmd alike (Docker merges them).
        if let image { check.adoptTimings(of: image) }
        if let text = request.healthInterval, case let value = try ContainerOptions.milliseconds(text, flag: "--health-interval"), value > 0 { check.intervalMilliseconds = value }
        if let text = request.healthTimeout, case let value = try ContainerOptions.milliseconds(text, flag: "--health-timeout"), value > 0 { check.timeoutMilliseconds = value }
        if let text = request.healthStartPeriod, case let value = try ContainerOptions.milliseconds(text, flag: "--health-start-period"), value > 0 { check.startPeriodMilliseconds = value }
        if let retries = request.healthRetries {
            guard retries >= 1 else { throw APIError.invalid("--health-retries", "\(retries) must be at least 1") }
            check.retries = retries
        }
        return check
    }

    /// Docker's form of a container's check (image config, inspect):
    /// `CMD-SHELL X` for a shell command (`--health-cmd`, the image's
    /// CMD-SHELL), else `CMD` and the argv; timings in nanoseconds.
    static func healthConfig(_ check: HealthCheck) -> HealthConfig {
        let command = check.command
        let shell = command.count == 3 && (command[0] == "sh" || command[0] == "/bin/sh") && command[1] == "-c"
        let nanosecondsPerMillisecond: Int64 = 1_000_000
        return HealthConfig(test: shell ? ["CMD-SHELL", command[2]] : ["CMD"] + command,
                            intervalNanoseconds: Int64(check.intervalMilliseconds) * nanosecondsPerMillisecond,
                            timeoutNanoseconds: Int64(check.timeoutMilliseconds) * nanosecondsPerMillisecond,
                            startPeriodNanoseconds: Int64(check.startPeriodMilliseconds) * nanosecondsPerMillisecond, retries: check.retries)
    }

    /// An anonymous volume for each of the image's VOLUME paths that no
    /// `-v` or `--volumes-from` mount covers (as Docker does; `rm -v`
    /// removes them with the container), sorted by path.
    func imageVolumes(_ paths: [String], besides mounts: [ContainerInspectView.Mount], image: String) throws -> [ContainerInspectView.Mount] {
        var added: [ContainerInspectView.Mount] = []
        for path in paths.sorted() {
            let destination = ImageChange.normalize(path)
            guard path.hasPrefix("/") else {
                throw APIError(status: 400, code: "image_unusable", message: "image \(image) declares VOLUME \(path.debugDescription), which is not an absolute path",
                               hint: "fix the image (VOLUME takes absolute paths), or commit a corrected one with -c 'VOLUME /path'")
            }
            guard destination != "/" else {
                throw APIError(status: 400, code: "image_unusable", message: "image \(image) declares VOLUME /, which would hide the whole root filesystem",
                               hint: "fix the image's VOLUME")
            }
            if mounts.contains(where: { ImageChange.normalize($0.Destination) == destination }) || added.contains(where: { $0.Destination == destination }) {
                continue
            }
            let name = Self.randomID()
            _ = try volumes.ensure(name, anonymous: true)
            added.append(.init(Type: "volume", Name: name, Source: volumes.dataPath(name), Destination: destination, RW: true))
        }
        return added
    }

    /// Copies what the image holds at each volume's path into the volume
    /// when the volume is empty (Docker's copy-up on first use), owners and
    /// modes kept; a path the image lacks, or that is not a directory there,
    /// leaves the volume empty. Called on the created container.
    func seedVolumes(_ id: String, mounts: [ContainerInspectView.Mount]) throws {
        for mount in mounts where mount.Type == "volume" {
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: mount.Source)) ?? ["?"]
            guard contents.isEmpty else { continue }
            let spool = try Self.spoolFile(in: root)
            defer { close(spool) }
            do {
                try runtime.archive(id, path: mount.Destination, rootName: ".", followLink: true, includeVolumes: false, to: spool)
            } catch RuntimeError.noSuchPath, RuntimeError.notADirectory {
                continue
            }
            lseek(spool, 0, SEEK_SET)
            let extractor = try LayerExtractor(rootPath: mount.Source, options: .init(mode: .plain, preserveOwnership: true))
            _ = try extractor.extract(from: FileByteSource(descriptor: spool, path: "the image's \(mount.Destination)"), compression: LayerCompression.none)
        }
    }
}

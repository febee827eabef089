import Daemon
import Foundation
import HTTP

/// `shoal volume create|ls|inspect|rm`: named volumes of the node daemon.
enum VolumeCommands {
    static let usage = """
        shoal volume create [--label K=V]... [NAME] | ls [-q] | inspect NAME... | rm [-f] NAME...  (--format json on every command)
        """

    static func run(_ rest: [String]) -> Int32 {
        ContainerCommands.runSubcommand(of: "volume", rest, usage: usage) { subcommand, arguments in
            let flags = try ContainerFlags(arguments, definitions: [
                .option("--label"), .option("--format"), .flag("--quiet", "-q"), .flag("--force", "-f"), .option("--driver", "-d"),
            ])
            let client = try ContainerCommands.client(flags)
            defer { Task { await client.shutdown() } }
            return try await dispatch(subcommand, flags, client: client)
        }
    }

    static func path(_ name: String) -> String { "/v1/volumes/" + PercentEncoding.encode(name) }

    static func dispatch(_ subcommand: String, _ flags: ContainerFlags, client: ControlClient) async throws -> Int32 {
        let format = flags.value("--format")
        switch subcommand {
        case "create":
            if let driver = flags.value("--driver"), driver != "local" {
                throw ClusterCommands.Failure(description: "--driver \(driver): only the local driver exists")
            }
            guard flags.positional.count <= 1 else { throw ClusterCommands.Failure(description: "usage: shoal volume create [NAME]") }
            var request = VolumeCreateRequest(name: flags.positional.first)
            var labels: [String: String] = [:]
            for label in flags.all("--label") {
                let parts = label.split(separator: "=", maxSplits: 1).map(String.init)
                labels[parts[0]] = parts.count > 1 ? parts[1] : ""
            }
            request.labels = labels.isEmpty ? nil : labels
            let volume: VolumeView = try await client.call(.post, "/v1/volumes", json: request)
            if format == "json" { return ClusterCommands.output(volume) }
            print(volume.name)
            return 0
        case "ls", "list":
            let volumes: [VolumeView] = try await client.call(.get, "/v1/volumes")
            if flags.has("--quiet") {
                volumes.forEach { print($0.name) }
                return 0
            }
            if format == "json" { return ClusterCommands.output(volumes) }
            ClusterCommands.printTable(["DRIVER", "VOLUME NAME"], volumes.map { [$0.driver, $0.name] })
            return 0
        case "inspect":
            guard !flags.positional.isEmpty else { throw ClusterCommands.Failure(description: "usage: shoal volume inspect NAME...") }
            var volumes: [VolumeView] = []
            for name in flags.positional { volumes.append(try await client.call(.get, path(name))) }
            if let format, format != "json" {
                let template = try GoTemplate(format)
                for volume in volumes { print(try template.render(try ContainerCommands.document(volume))) }
                return 0
            }
            return ClusterCommands.output(volumes)
        case "rm", "remove":
            guard !flags.positional.isEmpty else { throw ClusterCommands.Failure(description: "usage: shoal volume rm [-f] NAME...") }
            var status: Int32 = 0
            for name in flags.positional {
                do {
                    try await client.perform(.delete, path(name) + "?force=\(flags.has("--force"))")
                    print(name)
                } catch let error as APIError {
                    FileHandle.standardError.write(Data("Error: \(error.message)\(error.hint.isEmpty ? "" : "\nhint: " + error.hint)\n".utf8))
                    status = 1
                }
            }
            return status
        default:
            throw ClusterCommands.Failure(description: "unknown command '\(subcommand)'\nusage:\n\(usage)")
        }
    }
}

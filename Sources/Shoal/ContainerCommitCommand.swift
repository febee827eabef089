import Daemon
import Foundation

/// `shoal container commit [-m MSG] [-a AUTHOR] [-c 'INSTRUCTION']...
/// [--pause=false] CONTAINER [REPOSITORY[:TAG]]` (as `docker commit`): the
/// container's changes become a new image in the daemon's store; prints
/// the image's digest.
enum ContainerCommitCommand {
    static let usage = "usage: shoal container commit [-m MESSAGE] [-a AUTHOR] [-c 'INSTRUCTION']... [--pause=false] CONTAINER [REPOSITORY[:TAG]]"

    static let flags: [ContainerFlags.Definition] = [
        .option("--message", "-m"), .option("--author", "-a"), .option("--change", "-c"), .flag("--pause", "-p"), .option("--format"),
    ]

    static func run(_ arguments: [String]) async throws -> Int32 {
        let flags = try ContainerFlags(arguments, definitions: flags)
        guard flags.positional.count == 1 || flags.positional.count == 2 else { throw ClusterCommands.Failure(description: usage) }
        var request = ContainerCommitRequest(reference: flags.positional.count == 2 ? flags.positional[1] : nil)
        request.comment = flags.value("--message")
        request.author = flags.value("--author")
        let changes = flags.all("--change")
        request.changes = changes.isEmpty ? nil : changes
        request.pause = flags.disabled.contains("--pause") ? false : nil
        let client = try ContainerCommands.client(flags)
        defer { Task { await client.shutdown() } }
        let reply: ContainerCommitReply = try await client.call(.post, ContainerCommands.path(flags.positional[0], "/commit"), json: request)
        if ContainerCommands.format(flags) == "json" { return ClusterCommands.output(reply) }
        print(reply.id)
        return 0
    }
}

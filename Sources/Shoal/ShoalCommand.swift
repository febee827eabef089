import Foundation
import Simulation

/// Dispatches `shoal <command> ...`.
enum ShoalCommand {
    static let usage = """
        usage: shoal <command> [options]

        commands:
          sim raft [flags]   run a simulated Raft cluster (same flags as shoal-sim raft)
          version            print the version
          help               print this help

        \(ClusterCommands.usage)
        \(DevCommand.usage)
        \(ServiceCommands.usage)
        \(ImageImportCommand.usage)
        \(ImageCommands.usage)
        \(RegistryCommands.usage)
        \(ContainerCommands.usage)
        \(VolumeCommands.usage)
        """

    static func run(_ arguments: [String]) -> Int32 {
        guard let command = arguments.first else {
            print(usage)
            return 2
        }
        let rest = Array(arguments.dropFirst())
        switch command {
        case "sim":
            return SimulationCommand.run(rest)
        case "version", "--version":
            print("shoal 0.1.0")
            return 0
        case "help", "--help", "-h":
            print(usage)
            return 0
        case "internal-storage-torture":
            return runStorageTorture(arguments: rest)
        case "dev":
            return DevCommand.run(rest)
        case "service":
            return ServiceCommands.run(rest)
        case "image" where rest.first == "import" || rest.first == "ls":
            return ImageImportCommand.run(rest)
        case "image" where ImageCommands.subcommands.contains(rest.first ?? ""):
            return ImageCommands.run(rest)
        case "registry":
            return RegistryCommands.run(rest)
        case "container":
            return ContainerCommands.run(rest)
        case "volume":
            return VolumeCommands.run(rest)
        // Last: building the set looks up a conformance on first use, a scan
        // of all of them that `container run` need not pay for.
        case _ where ClusterCommands.commands.contains(command):
            return ClusterCommands.run(command, rest)
        default:
            FileHandle.standardError.write(Data("shoal: unknown command '\(command)'. Run `shoal help` for the list.\n".utf8))
            return 2
        }
    }
}

import Foundation

/// The `shoal` binary: the CLI, and (as later issues land) the daemon.
let arguments = Array(CommandLine.arguments.dropFirst())
exit(ShoalCommand.run(arguments))

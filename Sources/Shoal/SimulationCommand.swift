import Foundation

/// `shoal sim ...`: runs the deterministic simulator in this binary.
enum SimulationCommand {
    static func run(_ arguments: [String]) -> Int32 {
        FileHandle.standardError.write(Data("shoal sim: not wired into this binary yet; run `shoal-sim \(arguments.joined(separator: " "))` instead.\n".utf8))
        return 2
    }
}

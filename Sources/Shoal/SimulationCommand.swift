import Simulation

/// `shoal sim ...`: the deterministic simulator, as `shoal-sim`.
enum SimulationCommand {
    static func run(_ arguments: [String]) -> Int32 {
        SimulationCommandLine.run(arguments)
    }
}

// shoal-sim: deterministic whole-cluster simulations. See `shoal-sim --help`.
#if canImport(Glibc)
import Glibc
#endif
import Simulation

exit(SimulationCommandLine.run(Array(CommandLine.arguments.dropFirst())))

#if canImport(Glibc)
import Glibc
#endif
import Raft
import Scheduler

/// The command line of `shoal-sim` (and `shoal sim`): parses flags, runs the
/// seeds, prints failures with their replay commands, and returns the exit
/// code (0 all passed, 1 a seed failed, 2 bad usage).
public enum SimulationCommandLine {
    public static let usage = """
        usage: shoal-sim raft|cluster|services [--seed S | --seeds N [--seed S]] [--members 3|5|7]
                              [--steps N | --duration MS] [--faults LIST] [--bug NAME] [-v]
                              [--workers N] [--tasks N]
               shoal-sim raft|services --list-bugs

        Runs a Raft group in one process on simulated time with a simulated network
        and disks, from one UInt64 seed; the same seed replays the same run byte for
        byte. Every invariant is checked after every event; after the fault phase
        all faults heal and a proposal must commit within 10 s (simulated).

          raft            members replicate a key-value store; clients put and get
          cluster         members apply the log to ClusterState as managers do;
                          clients create services and update them with
                          compare-and-set; checked: no lost update, a linearizable
                          API history, equal snapshots, no acknowledged write lost
          services        5 managers (default) run the leader loop (Orchestrator,
                          Scheduler) and the dispatcher on ClusterState; simulated
                          workers register, heartbeat, start tasks after a latency,
                          crash them and die; an operator creates, updates, scales
                          and drains. Checked: no slot running on two nodes, no
                          placement against a constraint, no acknowledged spec
                          lost, every service converged within 60 s (simulated)
                          of the faults healing

          --seed S        run seed S (with --seeds: the first seed; default 1)
          --seeds N       run N consecutive seeds
          --members M     founding voters: 3, 5 or 7 (default 3; services: 5)
          --workers N     services: simulated workers (default \(SimulationOptions.defaultWorkers))
          --tasks N       services: tasks the services ask for in all (default \(SimulationOptions.defaultTasks))
          --steps N       length of the fault phase in events
          --duration MS   length of the fault phase in simulated ms (default \(SimulationOptions.defaultDurationMs); services: \(SimulationOptions.defaultServicesDurationMs))
          --faults LIST   comma list of: \(FaultKind.allCases.map(\.rawValue).joined(separator: ",")) (default all; 'none' for none)
          --bug NAME      plant a known Raft, Scheduler or Orchestrator defect (debug builds only)
          --list-bugs     list the defects that can be planted (debug builds only)
          -v              print every seed's trace

        The last line is "N passed, F failed"; the exit code is 1 on any failure.
        """

    /// How many events of a failing run to show when no trace was asked for.
    static let failureTraceLines = 60

    private struct UsageFailure: Error {
        var message: String
    }

    public static func run(_ arguments: [String]) -> Int32 {
        do {
            return try runChecked(arguments)
        } catch let failure as UsageFailure {
            writeStandardError("shoal-sim: \(failure.message)\n")
            return 2
        } catch {
            writeStandardError("shoal-sim: \(error)\n")
            return 2
        }
    }

    static func writeStandardError(_ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
    }

    /// One seed of the chosen simulation.
    public static func runSeed(_ seed: UInt64, options: SimulationOptions) -> SimulationResult {
        switch options.workload {
        case .raft, .cluster: return RaftSimulation(seed: seed, options: options).run()
        case .services: return ServicesSimulation(seed: seed, options: options).run()
        }
    }

    private static func runChecked(_ arguments: [String]) throws -> Int32 {
        var arguments = arguments
        if arguments.isEmpty || arguments.contains("--help") || arguments.contains("-h") {
            print(usage)
            return arguments.isEmpty ? 2 : 0
        }
        let name = arguments.removeFirst()
        guard let workload = SimulationWorkload(rawValue: name) else {
            throw UsageFailure(message: "unknown simulation '\(name)'; choose raft, cluster or services\n\(usage)")
        }

        var options = SimulationOptions(members: workload == .services ? 5 : 3, workload: workload)
        var firstSeed: UInt64 = 1
        var seedCount: UInt64 = 1
        var verbose = false

        var position = 0
        func value(after flag: String) throws -> String {
            position += 1
            guard position < arguments.count else { throw UsageFailure(message: "\(flag) needs a value") }
            return arguments[position]
        }
        func number<T: FixedWidthInteger>(_ text: String, flag: String) throws -> T {
            guard let parsed = T(text) else { throw UsageFailure(message: "\(flag) takes a non-negative integer, not '\(text)'") }
            return parsed
        }

        while position < arguments.count {
            let flag = arguments[position]
            switch flag {
            case "--seed": firstSeed = try number(value(after: flag), flag: flag)
            case "--seeds":
                seedCount = try number(value(after: flag), flag: flag)
                if seedCount == 0 { throw UsageFailure(message: "--seeds must be at least 1") }
            case "--members":
                let members: Int = try number(value(after: flag), flag: flag)
                guard SimulationOptions.allowedMemberCounts.contains(members) else { throw UsageFailure(message: "--members must be 3, 5 or 7, not \(members)") }
                options.members = members
            case "--steps":
                let steps: Int = try number(value(after: flag), flag: flag)
                if steps == 0 { throw UsageFailure(message: "--steps must be at least 1") }
                options.steps = steps
            case "--duration":
                options.durationMs = try number(value(after: flag), flag: flag)
                if options.durationMs == 0 { throw UsageFailure(message: "--duration must be at least 1 ms") }
            case "--workers", "--tasks":
                guard workload == .services else { throw UsageFailure(message: "\(flag) applies to 'shoal-sim services' only") }
                let count: Int = try number(value(after: flag), flag: flag)
                if count == 0 { throw UsageFailure(message: "\(flag) must be at least 1") }
                if flag == "--workers" { options.workers = count } else { options.tasks = count }
            case "--faults":
                do {
                    options.faults = try FaultKind.parseList(value(after: flag))
                } catch let error as SimulationUsageError {
                    throw UsageFailure(message: error.message)
                }
            case "--bug":
                let name = try value(after: flag)
                #if DEBUG
                if let bug = PlantedBug(rawValue: name) {
                    options.plantedBug = bug
                } else if let bug = ServicesPlantedBug(rawValue: name), workload == .services {
                    options.servicesPlantedBug = bug
                } else {
                    throw UsageFailure(message: "unknown planted bug '\(name)' for \(workload.rawValue); --list-bugs shows them")
                }
                #else
                throw UsageFailure(message: "planted bugs exist only in debug builds; build without -c release to use --bug \(name)")
                #endif
            case "--list-bugs":
                #if DEBUG
                for bug in PlantedBug.allCases { print(bug.rawValue) }
                if workload == .services {
                    for bug in ServicesPlantedBug.allCases { print(bug.rawValue) }
                }
                return 0
                #else
                throw UsageFailure(message: "planted bugs exist only in debug builds; build without -c release to use --list-bugs")
                #endif
            case "-v", "--verbose": verbose = true
            default: throw UsageFailure(message: "unknown argument '\(flag)'\n\(usage)")
            }
            position += 1
        }
        if options.steps != nil && arguments.contains("--duration") { throw UsageFailure(message: "give --steps or --duration, not both") }

        options.recordTrace = verbose
        var passed = 0
        var failed = 0
        var totals = SimulationStatistics()
        let clock = ContinuousClock()
        let started = clock.now
        for offset in 0..<seedCount {
            let (seed, overflow) = firstSeed.addingReportingOverflow(offset)
            if overflow { break }
            let result = runSeed(seed, options: options)
            totals.add(result.statistics)
            if verbose {
                for line in result.trace { print(line) }
                print("seed \(seed) \(result.passed ? "passed" : "FAILED") trace-hash \(String(result.traceHash, radix: 16)) \(result.statistics.summary)")
            }
            if let violation = result.violation {
                failed += 1
                print("seed \(seed) FAILED: \(violation)")
                print("  plan: \(result.plan)")
                if !verbose {
                    // The run is deterministic: replay it with the trace on to show
                    // what led up to the failure.
                    var traced = options
                    traced.recordTrace = true
                    let replay = runSeed(seed, options: traced)
                    print("  last events:")
                    for line in replay.trace.suffix(failureTraceLines) { print("    \(line)") }
                }
                print("  replay: \(result.replayCommand)")
            } else {
                passed += 1
            }
        }
        let elapsed = clock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("coverage: \(totals.summary)")
        writeStandardError("\(passed + failed) seeds in \(Int(seconds * 1000)) ms: \(Int(Double(passed + failed) / max(seconds, 1e-9))) seeds/s\n")
        print("\(passed) passed, \(failed) failed")
        return failed > 0 ? 1 : 0
    }
}

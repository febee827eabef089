import Foundation

/// `shoal-bench <suite>`: release-build benchmarks. Each figure is printed on
/// its own line as `name value unit`.
let arguments = Array(CommandLine.arguments.dropFirst())
let usage = """
    usage: shoal-bench raft [--duration SECONDS] [--dir PATH]

    raft   committed proposals/s and commit latency p50/p99 of a 3-member
           in-process cluster, in memory and on SQLite, for 1 and 64 proposers,
           and this machine's fsync rate (the bound on durable throughput)
    """

guard let suite = arguments.first else {
    print(usage)
    exit(2)
}
switch suite {
case "raft":
    do {
        let options = try RaftBenchmarkOptions(parsing: Array(arguments.dropFirst()))
        try RaftBenchmark(options: options).run()
    } catch {
        FileHandle.standardError.write(Data("shoal-bench raft: \(error)\n".utf8))
        exit(1)
    }
case "help", "--help", "-h":
    print(usage)
default:
    FileHandle.standardError.write(Data("shoal-bench: unknown suite '\(suite)'\n\(usage)\n".utf8))
    exit(2)
}

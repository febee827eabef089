import Foundation

struct NetBenchmarkOptions {
    /// Seconds each throughput run lasts.
    var durationSeconds: Double = 2
    /// Bulk TLS stops after this many bytes or `durationSeconds`, whichever comes first.
    var bulkLimitBytes = 1 << 30
    /// `openssl speed` seconds per block size.
    var opensslSeconds = 2
    /// Parts to run (`--only rpc,bulk,http`; profiling one at a time); all by default.
    var parts: Set<String> = NetBenchmarkOptions.allParts
    static let allParts: Set<String> = ["rpc", "bulk", "http"]

    struct UsageError: Error, CustomStringConvertible {
        var description: String
    }

    init(parsing arguments: [String]) throws {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            switch flag {
            case "--duration":
                guard let value = rest.popFirst().flatMap(Double.init), value > 0 else {
                    throw UsageError(description: "--duration needs a positive number of seconds")
                }
                durationSeconds = value
            case "--bulk-mib":
                guard let value = rest.popFirst().flatMap(Int.init), value > 0 else {
                    throw UsageError(description: "--bulk-mib needs a positive number of MiB")
                }
                bulkLimitBytes = value << 20
            case "--only":
                let names = Set((rest.popFirst() ?? "").split(separator: ",").map(String.init))
                guard !names.isEmpty, names.isSubset(of: Self.allParts) else {
                    throw UsageError(description: "--only takes a comma-separated list of \(Self.allParts.sorted().joined(separator: ", "))")
                }
                parts = names
            default:
                throw UsageError(description: "unknown flag '\(flag)'; see `shoal-bench help`")
            }
        }
    }
}

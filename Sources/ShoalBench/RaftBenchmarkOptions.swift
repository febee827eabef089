import Foundation

struct RaftBenchmarkOptions {
    var durationSeconds: Double = 2
    var directory: String = NSTemporaryDirectory()
    var payloadBytes = 128
    /// The leader writes its own entries on a ``RaftStorageWriter`` in
    /// parallel with replicating them (Raft dissertation §10.2.1) instead of
    /// persisting each Ready on its loop thread before it advances. Off by
    /// default: on this two-core machine with the three members on one disk,
    /// the extra thread hand-overs cost more than the overlap gains.
    var parallelLeaderWrites = false

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
            case "--parallel-leader-writes":
                parallelLeaderWrites = true
            case "--sequential-leader-writes":
                parallelLeaderWrites = false
            case "--dir":
                guard let value = rest.popFirst() else { throw UsageError(description: "--dir needs a directory") }
                directory = value
            default:
                throw UsageError(description: "unknown flag '\(flag)'; see `shoal-bench help`")
            }
        }
    }
}

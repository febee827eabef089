import Foundation

struct RaftBenchmarkOptions {
    var durationSeconds: Double = 2
    var directory: String = NSTemporaryDirectory()
    var payloadBytes = 128

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
            case "--dir":
                guard let value = rest.popFirst() else { throw UsageError(description: "--dir needs a directory") }
                directory = value
            default:
                throw UsageError(description: "unknown flag '\(flag)'; see `shoal-bench help`")
            }
        }
    }
}

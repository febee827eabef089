import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the time of one runtime operation goes, step by step: written to
/// standard error (the daemon's log) as one line per operation when the
/// environment sets `SHOAL_TRACE_TIMINGS=1`, else nothing is measured.
/// For finding what a container start or removal spends its milliseconds
/// on (the figures themselves belong in `shoal-bench`).
public struct StepTimings {
    public static let enabled = getenv("SHOAL_TRACE_TIMINGS").map { String(cString: $0) == "1" } ?? false

    private let operation: String
    private var last: ContinuousClock.Instant?
    private let began: ContinuousClock.Instant?
    private var steps: [(String, Duration)] = []

    public init(_ operation: String) {
        self.operation = operation
        began = Self.enabled ? .now : nil
        last = began
    }

    /// Ends the step called `name` (it began where the previous one ended).
    public mutating func mark(_ name: String) {
        guard let last else { return }
        let now = ContinuousClock.now
        steps.append((name, now - last))
        self.last = now
    }

    /// Writes the line: `shoal timings OPERATION total=X.XXms step=X.XXms ...`.
    public func report() {
        guard let began else { return }
        func milliseconds(_ duration: Duration) -> String {
            let value = Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15
            return String(format: "%.2f", value)
        }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let at = String(format: "%.2f", Double(now.tv_sec % 1000) * 1e3 + Double(now.tv_nsec) / 1e6)
        var line = "shoal timings \(operation) at=\(at) total=\(milliseconds(ContinuousClock.now - began))ms"
        for (name, duration) in steps { line += " \(name)=\(milliseconds(duration))ms" }
        line += "\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }
}

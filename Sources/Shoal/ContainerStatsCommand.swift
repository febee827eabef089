import Daemon
import Foundation

/// `shoal container stats [--no-stream] [C...]`: CPU % from two samples of
/// the cgroup's CPU time, memory against the limit, processes.
enum ContainerStatsCommand {
    /// Between the two samples of one CPU % figure (docker: about a second).
    static let sampleInterval: Duration = .seconds(1)

    static func run(_ flags: ContainerFlags, client: ControlClient) async throws -> Int32 {
        var names = flags.positional
        if names.isEmpty {
            let running: [ContainerSummary] = try await client.call(.get, "/v1/containers?all=\(flags.has("--all"))")
            names = running.map(\.id)
        }
        var previous = try await sample(names, client: client)
        let json = flags.value("--format") == "json"
        while true {
            try await Task.sleep(for: sampleInterval)
            let current = try await sample(names, client: client)
            let rows = current.map { now -> [String] in
                let before = previous.first { $0.id == now.id }
                return row(now, before: before)
            }
            if json {
                _ = ClusterCommands.output(current)
            } else {
                if !flags.has("--no-stream") { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                ClusterCommands.printTable(["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"], rows)
            }
            ClusterCommands.flushOutput()
            if flags.has("--no-stream") { return 0 }
            previous = current
        }
    }

    static func sample(_ names: [String], client: ControlClient) async throws -> [ContainerStatsView] {
        var views: [ContainerStatsView] = []
        for name in names {
            views.append(try await client.call(.get, ContainerCommands.path(name, "/stats")))
        }
        return views
    }

    static func row(_ now: ContainerStatsView, before: ContainerStatsView?) -> [String] {
        var cpu = "--"
        if let before, let used = now.cpuUsageMicroseconds, let earlier = before.cpuUsageMicroseconds, now.readAtMilliseconds > before.readAtMilliseconds {
            let wall = Double(now.readAtMilliseconds - before.readAtMilliseconds) * 1000
            cpu = String(format: "%.2f%%", Double(used &- earlier) / wall * 100)
        }
        let memory = now.memoryUsageBytes.map(bytes) ?? "--"
        let limit = now.memoryLimitBytes.map { bytes(UInt64($0)) } ?? "unlimited"
        var percent = "--"
        if let used = now.memoryUsageBytes, let limit = now.memoryLimitBytes, limit > 0 {
            percent = String(format: "%.2f%%", Double(used) / Double(limit) * 100)
        }
        return [String(now.id.prefix(12)), now.name, cpu, "\(memory) / \(limit)", percent, now.pidsCurrent.map(String.init) ?? "--"]
    }

    /// `1.5MiB`, as docker prints sizes.
    static func bytes(_ value: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = Double(value)
        var unit = 0
        while amount >= 1024 && unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value)B" : String(format: "%.2f%@", amount, units[unit])
    }
}

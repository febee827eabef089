import ClusterState
import Foundation
import Net

/// Many ``SimulatedWorker``s joined to one manager: what the manager's scale
/// test and `shoal-bench dispatcher` put in front of it.
public final class SimulatedWorkerFleet: @unchecked Sendable {
    /// Joins under way at once: each is a key, two handshakes and two
    /// calls; more at once only queues them on the manager's two cores.
    public static let maxConcurrentJoins = 32

    public let all: [SimulatedWorker]

    init(_ workers: [SimulatedWorker]) {
        all = workers
    }

    /// Joins `count` workers (hostnames `sim-0` ...) through the manager at
    /// `manager` with the worker join `token`.
    public static func join(count: Int, manager: String, token: JoinToken, hostnamePrefix: String = "sim-") async throws -> SimulatedWorkerFleet {
        let workers = try await withThrowingTaskGroup(of: (Int, SimulatedWorker).self) { group in
            var next = 0
            var joined: [SimulatedWorker?] = Array(repeating: nil, count: count)
            func add() {
                let index = next
                next += 1
                group.addTask { (index, try await SimulatedWorker.join(manager: manager, token: token, hostname: hostnamePrefix + String(index))) }
            }
            while next < min(count, maxConcurrentJoins) { add() }
            for try await (index, worker) in group {
                joined[index] = worker
                if next < count { add() }
            }
            return joined.compactMap { $0 }
        }
        return SimulatedWorkerFleet(workers)
    }

    /// Opens every worker's session.
    public func startAll() {
        for worker in all { worker.start() }
    }

    /// Ends every session (those already stopped stay stopped).
    public func stopAll() async {
        await withTaskGroup(of: Void.self) { group in
            for worker in all { group.addTask { await worker.stop() } }
        }
    }

    /// Workers whose session is open now.
    public var connectedCount: Int { all.filter(\.isConnected).count }
}

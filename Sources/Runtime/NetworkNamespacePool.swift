import Posix
import Foundation

/// Network namespaces made before the bridge containers that will run in
/// them (a warm pool): each has `lo` up and a veth pair whose host end is an
/// up port of the bridge and whose `eth0` is up without an address, so a
/// start only adds the container's address. A take refills the pool on its
/// own thread, up to `capacity`.
///
/// Nothing outlives the process: a pooled namespace lives only through the
/// descriptor held here, so closing it (``empty()``, ``stop()``, a daemon
/// that dies) lets the kernel delete the namespace and its veth pair.
final class NetworkNamespacePool: @unchecked Sendable {
    /// One prepared namespace.
    struct Entry {
        /// fd of the namespace: the taker owns it.
        var namespace: Int32
        /// The veth end on the bridge.
        var hostInterface: String
        /// The bridge's interface index when the veth was made its port.
        var master: Int32
        /// A NETLINK_ROUTE socket inside the namespace.
        var inside: RouteNetlink
        /// The index of `eth0` inside.
        var containerInterface: Int32

        func close() {
            Syscall.close(namespace)
        }
    }

    let capacity: Int
    private let make: @Sendable () throws -> Entry
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var entries: [Entry] = []
    private var filling = false
    private var stopped = false
    /// Bumped by ``empty()``: an entry made before it is not kept.
    private var generation = 0

    init(capacity: Int, make: @escaping @Sendable () throws -> Entry) {
        self.capacity = capacity
        self.make = make
    }

    /// A prepared namespace, or nil when none is ready; starts a refill.
    func take() -> Entry? {
        condition.lock()
        let entry = entries.isEmpty ? nil : entries.removeFirst()
        condition.unlock()
        refill()
        return entry
    }

    /// Makes namespaces on a background thread until `capacity` are ready
    /// (stops at the first failure: the next take tries again).
    func refill() {
        condition.lock()
        defer { condition.unlock() }
        guard capacity > 0, !filling, !stopped, entries.count < capacity else { return }
        filling = true
        let thread = Thread { [self] in fill() }
        thread.name = "shoal-netns-pool"
        thread.start()
    }

    private func fill() {
        condition.lock()
        let started = generation
        while !stopped && generation == started && entries.count < capacity {
            condition.unlock()
            let made = try? make()
            condition.lock()
            guard let made else { break }
            if stopped || generation != started {
                made.close()
            } else {
                entries.append(made)
            }
        }
        filling = false
        condition.broadcast()
        condition.unlock()
    }

    /// Closes every ready namespace, after any being made (the bridge is
    /// going away); a later take refills the pool.
    func empty() {
        condition.lock()
        generation += 1
        while filling { condition.wait() }
        let dropped = entries
        entries = []
        condition.unlock()
        dropped.forEach { $0.close() }
    }

    /// Empties the pool for good, after any namespace being made.
    func stop() {
        condition.lock()
        stopped = true
        while filling { condition.wait() }
        let dropped = entries
        entries = []
        condition.unlock()
        dropped.forEach { $0.close() }
    }
}

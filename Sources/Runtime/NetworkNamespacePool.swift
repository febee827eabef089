import Posix
import Foundation

/// Network namespaces made before the bridge containers that will run in
/// them (a warm pool): each has `lo` up and a veth pair whose host end is an
/// up port of the bridge and whose `eth0` is up without an address, so a
/// start only adds the container's address. Its own thread refills it, up
/// to `capacity`, after each take.
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
    /// A namespace is being made (outside the lock).
    private var filling = false
    /// The thread should make namespaces until the pool is full.
    private var wanted = false
    private var threadStarted = false
    private var stopped = false
    /// Bumped by ``empty()``: an entry made before it is not kept.
    private var generation = 0

    init(capacity: Int, make: @escaping @Sendable () throws -> Entry) {
        self.capacity = capacity
        self.make = make
    }

    /// A prepared namespace, or nil when none is ready. The taker calls
    /// ``refill()`` once it is done with the RTNL (so the refill does not
    /// hold it up).
    func take() -> Entry? {
        condition.lock()
        defer { condition.unlock() }
        return entries.isEmpty ? nil : entries.removeFirst()
    }

    /// Wakes the pool's thread (started on first use, so a take pays no
    /// thread creation) to make namespaces until `capacity` are ready; it
    /// stops at the first failure and waits for the next call.
    func refill() {
        condition.lock()
        defer { condition.unlock() }
        guard capacity > 0, !stopped, entries.count < capacity else { return }
        wanted = true
        if !threadStarted {
            threadStarted = true
            let thread = Thread { [self] in fillUntilStopped() }
            thread.name = "shoal-netns-pool"
            thread.start()
        }
        condition.broadcast()
    }

    private func fillUntilStopped() {
        condition.lock()
        while !stopped {
            guard wanted && entries.count < capacity else {
                wanted = false
                condition.wait()
                continue
            }
            let started = generation
            filling = true
            condition.unlock()
            let made = try? make()
            condition.lock()
            filling = false
            condition.broadcast()
            guard let made else {
                wanted = false
                continue
            }
            if stopped || generation != started {
                made.close()
            } else {
                entries.append(made)
            }
        }
        condition.unlock()
    }

    /// Closes every ready namespace, after any being made (the bridge is
    /// going away); the next start or claim refills the pool.
    func empty() {
        condition.lock()
        generation += 1
        wanted = false
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
        condition.broadcast()
        while filling { condition.wait() }
        let dropped = entries
        entries = []
        condition.unlock()
        dropped.forEach { $0.close() }
    }
}

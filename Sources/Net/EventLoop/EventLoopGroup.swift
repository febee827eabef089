import Posix
import Foundation

/// A fixed set of ``EventLoop``s; new sockets are spread over them round-robin.
///
/// Net never starts a thread per connection: the process's I/O threads are
/// exactly these loops (plus Swift's cooperative pool that runs the tasks).
public final class EventLoopGroup: @unchecked Sendable {
    /// Loop threads of ``shared``: enough to keep two cores busy with epoll
    /// while the cooperative pool runs TLS and request handling.
    public static let defaultThreadCount = 2

    /// The process-wide group used when none is given. Started on first use,
    /// never shut down.
    public static let shared: EventLoopGroup = {
        do {
            return try EventLoopGroup(threadCount: defaultThreadCount)
        } catch {
            fatalError("cannot start the shared event loops: \(error)")
        }
    }()

    public let loops: [EventLoop]
    private let lock = NSLock()
    private var nextIndex = 0

    public init(threadCount: Int) throws(SystemError) {
        precondition(threadCount > 0, "an event loop group needs at least one thread, got \(threadCount)")
        var loops: [EventLoop] = []
        for index in 0..<threadCount {
            loops.append(try EventLoop(name: "shoal-net-loop-\(index)"))
        }
        self.loops = loops
    }

    /// The loop for the next new socket.
    public func next() -> EventLoop {
        lock.withLock {
            let loop = loops[nextIndex]
            nextIndex = (nextIndex + 1) % loops.count
            return loop
        }
    }

    /// Stops every loop thread. Close the group's sockets first.
    public func shutdown() {
        for loop in loops { loop.shutdown() }
    }
}

import Foundation

/// A piece of a running container's output as it arrives, for attached
/// clients (the log file has it too).
public struct ContainerOutput: Sendable {
    /// `stdout` or `stderr` (a terminal's output is `stdout`).
    public var stream: String
    public var bytes: [UInt8]

    public init(stream: String, bytes: [UInt8]) {
        self.stream = stream
        self.bytes = bytes
    }
}

/// Hands a container's output to the clients attached to it while it runs:
/// the monitor thread publishes each chunk it drains; each subscriber gets
/// them in order from then on, and its stream ends once the container has
/// exited and its exit is recorded. A subscriber taken before start
/// (`run -it` attaches first) sees everything.
///
/// A subscriber that falls behind holds the monitor thread (and so, once
/// the log FIFO is full, the container's writes), as Docker's attach does;
/// one that takes nothing for ``stallTimeout`` is cut off instead
/// (``ContainerOutputSubscription/wasCutOff``), so a stuck client cannot
/// stop a container for good.
public final class ContainerOutputHub: @unchecked Sendable {
    private let lock = NSLock()
    private var subscribers: [UInt64: ContainerOutputSubscription] = [:]
    private var nextID: UInt64 = 0

    /// Output queued for one subscriber before publishing waits for it.
    public static let maxQueuedBytes = 4 << 20
    /// How long publishing waits for a subscriber that takes nothing.
    public static let stallTimeout: Duration = .seconds(30)

    init() {}

    /// The output from now until the current run ends (or until the
    /// subscriber stops iterating).
    public func subscribe() -> ContainerOutputSubscription {
        let (stream, continuation) = AsyncStream.makeStream(of: ContainerOutput.self)
        let subscription = ContainerOutputSubscription(stream: stream, continuation: continuation)
        let id = lock.withLock {
            defer { nextID += 1 }
            subscribers[nextID] = subscription
            return nextID
        }
        continuation.onTermination = { [weak self, weak subscription] _ in
            subscription?.cancel()
            _ = self?.lock.withLock { self?.subscribers.removeValue(forKey: id) }
        }
        return subscription
    }

    func publish(_ bytes: ArraySlice<UInt8>, stream: String) {
        let current = lock.withLock { Array(subscribers.values) }
        guard !current.isEmpty else { return }
        let chunk = ContainerOutput(stream: stream, bytes: Array(bytes))
        for subscription in current { subscription.offer(chunk) }
    }

    /// The run ended: every current subscriber's stream finishes.
    func finish() {
        let current = lock.withLock {
            defer { subscribers = [:] }
            return Array(subscribers.values)
        }
        for subscription in current { subscription.continuation.finish() }
    }
}

/// One attached client's view of a container's output (see
/// ``ContainerOutputHub``): iterate it once.
public final class ContainerOutputSubscription: AsyncSequence, @unchecked Sendable {
    public typealias Element = ContainerOutput

    private let stream: AsyncStream<ContainerOutput>
    let continuation: AsyncStream<ContainerOutput>.Continuation
    private let condition = NSCondition()
    private var queuedBytes = 0
    private var cancelled = false
    private var cutOff = false

    init(stream: AsyncStream<ContainerOutput>, continuation: AsyncStream<ContainerOutput>.Continuation) {
        self.stream = stream
        self.continuation = continuation
    }

    /// The stream ended because this subscriber stopped taking output, not
    /// because the container exited.
    public var wasCutOff: Bool { condition.withLock { cutOff } }

    /// Queues `chunk`, first waiting (bounded) while too much is queued.
    func offer(_ chunk: ContainerOutput) {
        let stall = Double(ContainerOutputHub.stallTimeout.components.seconds)
        condition.lock()
        var deadline = Date().addingTimeInterval(stall)
        while queuedBytes > 0 && queuedBytes + chunk.bytes.count > ContainerOutputHub.maxQueuedBytes && !cancelled {
            let before = queuedBytes
            if !condition.wait(until: deadline) && queuedBytes >= before {
                cutOff = true
                cancelled = true
            }
            if queuedBytes < before { deadline = Date().addingTimeInterval(stall) }  // it takes output: wait on
        }
        let dropped = cancelled
        if !dropped { queuedBytes += chunk.bytes.count }
        condition.unlock()
        if dropped {
            continuation.finish()
        } else {
            continuation.yield(chunk)
        }
    }

    func cancel() {
        condition.withLock {
            cancelled = true
            condition.broadcast()
        }
    }

    private func taken(_ count: Int) {
        condition.withLock {
            queuedBytes -= count
            condition.broadcast()
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<ContainerOutput>.AsyncIterator
        let subscription: ContainerOutputSubscription

        public mutating func next() async -> ContainerOutput? {
            guard let chunk = await base.next() else { return nil }
            subscription.taken(chunk.bytes.count)
            return chunk
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), subscription: self)
    }
}

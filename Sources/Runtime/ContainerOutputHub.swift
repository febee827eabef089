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
public final class ContainerOutputHub: @unchecked Sendable {
    private let lock = NSLock()
    private var subscribers: [UInt64: AsyncStream<ContainerOutput>.Continuation] = [:]
    private var nextID: UInt64 = 0

    /// Chunks buffered per subscriber that does not keep up; older ones are
    /// dropped beyond this (the log file keeps everything).
    public static let maxBufferedChunks = 4096

    init() {}

    /// A stream of the output from now until the current run ends (or until
    /// the subscriber stops iterating).
    public func subscribe() -> AsyncStream<ContainerOutput> {
        let (stream, continuation) = AsyncStream.makeStream(of: ContainerOutput.self, bufferingPolicy: .bufferingNewest(Self.maxBufferedChunks))
        let id = lock.withLock {
            defer { nextID += 1 }
            subscribers[nextID] = continuation
            return nextID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.lock.withLock { self?.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    var hasSubscribers: Bool { lock.withLock { !subscribers.isEmpty } }

    func publish(_ bytes: ArraySlice<UInt8>, stream: String) {
        let current = lock.withLock { Array(subscribers.values) }
        guard !current.isEmpty else { return }
        let chunk = ContainerOutput(stream: stream, bytes: Array(bytes))
        for continuation in current { continuation.yield(chunk) }
    }

    /// The run ended: every current subscriber's stream finishes.
    func finish() {
        let current = lock.withLock {
            defer { subscribers = [:] }
            return Array(subscribers.values)
        }
        for continuation in current { continuation.finish() }
    }
}

import Runtime

/// Wakes one async loop when a container changes (its state, a batch of
/// logged output, its removal) and, with `tick`, at least that often: `wait`
/// and `logs --follow` sleep until something happened rather than polling.
/// Subscribed on creation, so a change after it is never missed; one
/// consumer; ``close()`` when done.
final class ContainerChangeStream: @unchecked Sendable {
    private let container: Container
    private let token: UInt64
    private let continuation: AsyncStream<Void>.Continuation
    private var iterator: AsyncStream<Void>.Iterator
    private let ticker: Task<Void, Never>?

    init(_ container: Container, tick: Duration?) {
        // Newest only: many changes while the consumer works are one wake-up.
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.container = container
        self.continuation = continuation
        iterator = stream.makeAsyncIterator()
        token = container.subscribe { continuation.yield() }
        ticker = tick.map { period in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: period)
                    continuation.yield()
                }
            }
        }
    }

    deinit { close() }

    /// Returns after the next change or tick; false once the task is cancelled.
    func next() async -> Bool {
        await iterator.next() != nil
    }

    func close() {
        container.unsubscribe(token)
        ticker?.cancel()
        continuation.finish()
    }
}

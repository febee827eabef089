/// A connection owned by the pool or by one in-flight request.
final class PooledConnection: @unchecked Sendable {
    let transport: any HTTPTransport
    let reader: HTTPStreamReader
    var reused: Bool
    var idleSince: ContinuousClock.Instant = .now

    init(transport: any HTTPTransport, reader: HTTPStreamReader, reused: Bool) {
        self.transport = transport
        self.reader = reader
        self.reused = reused
    }
}

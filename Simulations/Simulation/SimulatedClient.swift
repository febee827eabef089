import Raft

/// A client of the key-value store: one operation at a time, retried on
/// another member after an error or a timeout, with the same idempotency key
/// (client id, sequence number) so a retried write applies once.
struct SimulatedClient {
    /// Client ids start at 1; 0 is the liveness probe.
    let id: UInt64
    var nextSequence: UInt64 = 1
    var leaderHint: NodeID = 0
    var operation: InFlight?

    struct InFlight {
        var kind: ClientOperation.Kind
        var key: UInt64
        var value: UInt64
        var sequence: UInt64
        var invokeTime: UInt64
        var attempt: UInt64 = 0
        var target: NodeID = 0
    }

    init(id: UInt64) { self.id = id }
}

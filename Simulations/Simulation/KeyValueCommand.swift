/// One write to the simulated key-value store, as carried in a log entry.
/// `client` and `sequence` are the idempotency key: the store applies a
/// command at most once however often a client retries it.
struct KeyValueCommand: Equatable, Sendable {
    /// Client 0 is the liveness probe; real clients count from 1.
    var client: UInt64
    var sequence: UInt64
    var key: UInt64
    var value: UInt64

    static let encodedBytes = 33
    private static let tag: UInt8 = 0x4b  // "K"

    func encoded() -> [UInt8] {
        var bytes: [UInt8] = [Self.tag]
        bytes.reserveCapacity(Self.encodedBytes)
        for word in [client, sequence, key, value] {
            for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return bytes
    }

    /// Nil for anything that is not a command (a new leader's empty no-op).
    init?(encoded bytes: [UInt8]) {
        guard bytes.count == Self.encodedBytes, bytes[0] == Self.tag else { return nil }
        var words: [UInt64] = []
        for word in 0..<4 {
            var value: UInt64 = 0
            for byte in 0..<8 { value |= UInt64(bytes[1 + word * 8 + byte]) << UInt64(byte * 8) }
            words.append(value)
        }
        self.init(client: words[0], sequence: words[1], key: words[2], value: words[3])
    }

    init(client: UInt64, sequence: UInt64, key: UInt64, value: UInt64) {
        self.client = client
        self.sequence = sequence
        self.key = key
        self.value = value
    }
}

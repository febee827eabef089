/// The replicated state machine of the simulation: a map from key to value
/// plus, per client, the newest sequence number applied (the dedup table
/// that makes retried writes apply once). Serialized deterministically
/// (sorted by key) so snapshots compare byte for byte.
struct KeyValueStore: Equatable {
    private(set) var values: [UInt64: UInt64] = [:]
    private(set) var lastSequence: [UInt64: UInt64] = [:]

    init() {}

    /// Applies `command`; returns false when it is a duplicate (already
    /// applied or superseded by a newer command of the same client).
    mutating func apply(_ command: KeyValueCommand) -> Bool {
        if let last = lastSequence[command.client], command.sequence <= last { return false }
        lastSequence[command.client] = command.sequence
        values[command.key] = command.value
        return true
    }

    func value(of key: UInt64) -> UInt64 { values[key] ?? 0 }

    /// Whether the write (client, sequence) has taken effect here.
    func hasApplied(client: UInt64, sequence: UInt64) -> Bool {
        (lastSequence[client] ?? 0) >= sequence
    }

    func serialized() -> [UInt8] {
        var bytes: [UInt8] = []
        func append(_ word: UInt64) {
            for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        append(UInt64(values.count))
        for key in values.keys.sorted() {
            append(key)
            append(values[key]!)
        }
        append(UInt64(lastSequence.count))
        for client in lastSequence.keys.sorted() {
            append(client)
            append(lastSequence[client]!)
        }
        return bytes
    }

    init?(serialized bytes: [UInt8]) {
        var offset = 0
        func read() -> UInt64? {
            guard offset + 8 <= bytes.count else { return nil }
            var value: UInt64 = 0
            for byte in 0..<8 { value |= UInt64(bytes[offset + byte]) << UInt64(byte * 8) }
            offset += 8
            return value
        }
        guard let valueCount = read() else { return nil }
        for _ in 0..<valueCount {
            guard let key = read(), let value = read() else { return nil }
            values[key] = value
        }
        guard let clientCount = read() else { return nil }
        for _ in 0..<clientCount {
            guard let client = read(), let sequence = read() else { return nil }
            lastSequence[client] = sequence
        }
        guard offset == bytes.count else { return nil }
    }
}

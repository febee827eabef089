/// A cluster client's write as carried in a log entry: the manager's
/// ``ClusterProposal`` bytes, tagged with who sent it (client, operation
/// sequence, attempt) so the simulation can tell which operation an applied
/// entry belongs to. Members apply only `proposal`, as a manager would.
struct ClusterEntry: Equatable {
    var client: UInt64
    var sequence: UInt64
    var attempt: UInt64
    var proposal: [UInt8]

    private static let tag: UInt8 = 0x43  // "C"
    private static let headerBytes = 25

    func encoded() -> [UInt8] {
        var bytes: [UInt8] = [Self.tag]
        bytes.reserveCapacity(Self.headerBytes + proposal.count)
        for word in [client, sequence, attempt] {
            for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return bytes + proposal
    }

    /// Nil for anything else (key-value commands, a leader's no-op).
    init?(encoded bytes: [UInt8]) {
        guard bytes.count >= Self.headerBytes, bytes[0] == Self.tag else { return nil }
        var words: [UInt64] = []
        for word in 0..<3 {
            var value: UInt64 = 0
            for byte in 0..<8 { value |= UInt64(bytes[1 + word * 8 + byte]) << UInt64(byte * 8) }
            words.append(value)
        }
        self.init(client: words[0], sequence: words[1], attempt: words[2], proposal: Array(bytes[Self.headerBytes...]))
    }

    init(client: UInt64, sequence: UInt64, attempt: UInt64, proposal: [UInt8]) {
        self.client = client
        self.sequence = sequence
        self.attempt = attempt
        self.proposal = proposal
    }
}

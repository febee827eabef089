import Foundation

/// What a manager proposes to Raft: a command plus the proposer's clock
/// reading, so that every manager applies the same timestamps.
public struct ClusterProposal: Codable, Sendable, Equatable {
    /// 1: JSON. 2: the binary Wire format (configs and secrets in binary). 3: task commands and batches in binary too.
    /// 4: a task status's published ports carry their host address; now written.
    public static let currentFormatVersion = Int(wireVersion)

    public var formatVersion: Int
    public var timeMilliseconds: Int64
    public var command: ClusterCommand

    public init(timeMilliseconds: Int64, command: ClusterCommand) {
        formatVersion = Self.currentFormatVersion
        self.timeMilliseconds = timeMilliseconds
        self.command = command
    }

    /// The bytes of a log entry: the binary format (``ClusterProposal+Wire``).
    public func encoded() -> [UInt8] {
        wireEncoded()
    }

    /// Decodes a log entry in either format: JSON (format 1, what managers
    /// wrote before the binary format; it starts with `{`) or binary.
    public init(encoded bytes: [UInt8]) throws(ClusterStateError) {
        guard bytes.first == UInt8(ascii: "{") else {
            do {
                self = try ClusterProposal(wireBytes: bytes)
            } catch {
                throw .undecodableCommand("\(error)")
            }
            return
        }
        do {
            self = try JSONDecoder().decode(ClusterProposal.self, from: Data(bytes))
        } catch {
            throw .undecodableCommand("\(error)")
        }
        guard formatVersion <= Self.jsonFormatVersion else {
            throw .undecodableCommand("format \(formatVersion) is newer than this shoal understands")
        }
    }

    /// The JSON format of log entries written before the binary one.
    static let jsonFormatVersion = 1
}

extension ClusterState {
    /// Applies a committed Raft entry's bytes at `index`.
    @discardableResult
    public mutating func apply(entryData: [UInt8], index: UInt64) throws(ClusterStateError) -> [ClusterEvent] {
        let proposal: ClusterProposal
        do {
            proposal = try ClusterProposal(encoded: entryData)
        } catch {
            appliedIndex = max(appliedIndex, index)
            throw error
        }
        return try apply(proposal.command, context: ApplyContext(index: index, timeMilliseconds: proposal.timeMilliseconds))
    }
}

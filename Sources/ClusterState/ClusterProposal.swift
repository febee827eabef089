import Foundation

/// What a manager proposes to Raft: a command plus the proposer's clock
/// reading, so that every manager applies the same timestamps.
public struct ClusterProposal: Codable, Sendable, Equatable {
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    public var timeMilliseconds: Int64
    public var command: ClusterCommand

    public init(timeMilliseconds: Int64, command: ClusterCommand) {
        formatVersion = Self.currentFormatVersion
        self.timeMilliseconds = timeMilliseconds
        self.command = command
    }

    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try! encoder.encode(self))
    }

    public init(encoded bytes: [UInt8]) throws(ClusterStateError) {
        do {
            self = try JSONDecoder().decode(ClusterProposal.self, from: Data(bytes))
        } catch {
            throw .undecodableCommand("\(error)")
        }
        guard formatVersion <= Self.currentFormatVersion else {
            throw .undecodableCommand("format \(formatVersion) is newer than this shoal understands")
        }
    }
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

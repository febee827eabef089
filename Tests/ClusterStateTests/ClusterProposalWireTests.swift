import Foundation
import Testing
import Wire
@testable import ClusterState

@Suite("ClusterProposal binary log format")
struct ClusterProposalWireTests {
    static let proposals: [ClusterProposal] = [
        ClusterProposal(timeMilliseconds: 1_700_000_000_123, command: .createConfig(id: "c1", spec: .init(name: "app.conf", labels: ["b": "2", "a": "1"], data: Array(repeating: 0x61, count: 256)))),
        ClusterProposal(timeMilliseconds: -5, command: .createSecret(id: "s1", spec: .init(name: "key", data: [0, 255, 7]))),
        ClusterProposal(timeMilliseconds: 0, command: .removeConfig(id: "c1")),
        ClusterProposal(timeMilliseconds: 9, command: .removeSecret(id: "s1")),
        // Commands without a binary body travel as JSON inside the binary envelope.
        ClusterProposal(timeMilliseconds: 42, command: .createService(id: "web", spec: Service.Spec(name: "web", task: TaskTemplate(image: "busybox")))),
        ClusterProposal(timeMilliseconds: 43, command: .batch([.removeConfig(id: "c2"), .removeSecret(id: "s2")])),
        // Format 3: the task commands, and batches mixing binary and JSON commands.
        ClusterProposal(timeMilliseconds: 44, command: .createTasks([
            .init(id: "t1", serviceID: "web", slot: 1),
            .init(id: "t2", serviceID: "web", slot: 0, nodeID: "n1", restartHistoryMilliseconds: [-3, 0, 1_700_000_000_000]),
        ])),
        ClusterProposal(timeMilliseconds: 45, command: .assignTask(id: "t1", expectedVersion: 300, nodeID: "n2")),
        ClusterProposal(timeMilliseconds: 46, command: .updateTaskStatus(id: "t1", status: ServiceTask.Status(state: .running))),
        ClusterProposal(timeMilliseconds: 47, command: .updateTaskStatus(id: "t2", status: ServiceTask.Status(
            state: .failed, timestampMilliseconds: 12, message: "exited with 137", error: "oom", exitCode: -9, containerID: "abc",
            health: .unhealthy, publishedPorts: [.init(publishedPort: 30_000, targetPort: 80, hostAddress: "127.0.0.1"),
                                                 .init(publishedPort: 0, targetPort: 53, transportProtocol: .udp, mode: .ingress)]))),
        ClusterProposal(timeMilliseconds: 48, command: .setTaskDesiredState(id: "t1", expectedVersion: nil, desiredState: .shutdown)),
        ClusterProposal(timeMilliseconds: 49, command: .setTaskDesiredState(id: "t2", expectedVersion: 7, desiredState: .running)),
        ClusterProposal(timeMilliseconds: 50, command: .removeTasks(ids: ["t1", "t2"])),
        ClusterProposal(timeMilliseconds: 51, command: .batch([
            .setTaskDesiredState(id: "t1", expectedVersion: 9, desiredState: .shutdown),
            .batch([.removeTasks(ids: ["t1"]), .createService(id: "db", spec: Service.Spec(name: "db", task: TaskTemplate(image: "postgres")))]),
            .createTasks([.init(id: "t3", serviceID: "web", slot: 1)]),
        ])),
    ]

    @Test("every command round-trips, in the binary format (version 4)")
    func roundTrip() throws {
        for proposal in Self.proposals {
            let bytes = proposal.encoded()
            #expect(bytes.first == 4, "binary entries start with their format version")
            #expect(try ClusterProposal(encoded: bytes) == proposal)
            #expect(proposal.encoded() == bytes, "encoding is deterministic (labels sorted)")
        }
    }

    @Test("a config is far smaller than its JSON entry")
    func binaryIsCompact() throws {
        let proposal = Self.proposals[0]
        let json = try JSONEncoder().encode(proposal)
        #expect(proposal.encoded().count < 300)
        #expect(proposal.encoded().count * 4 < json.count * 3)
    }

    @Test("a pass's batch of task commands is far smaller than as JSON inside the binary envelope")
    func taskBatchIsCompact() throws {
        let commands: [ClusterCommand] = (0..<500).map { index in
            let id = ObjectID("task-\(index)-0123456789abcdefghij")!
            return index % 2 == 0 ? .assignTask(id: id, expectedVersion: UInt64(1_000 + index), nodeID: "node-17")
                : .updateTaskStatus(id: id, status: ServiceTask.Status(state: .running, timestampMilliseconds: 1_700_000_000_000, message: "started"))
        }
        let binary = ClusterProposal(timeMilliseconds: 1, command: .batch(commands)).encoded()
        let json = try JSONEncoder().encode(ClusterCommand.batch(commands))
        #expect(binary.count * 3 < json.count, "\(binary.count) bytes binary, \(json.count) as JSON")
    }

    @Test("binary entries of format 2 (task commands as JSON) still apply")
    func formatTwoEntriesDecode() throws {
        let command = ClusterCommand.createTasks([.init(id: "t1", serviceID: "web", slot: 1)])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try encoder.encode(command)
        var body = WireWriter()
        body.writeLengthDelimited { writer in
            writer.writeSigned(5)
            writer.writeTag(ClusterProposal.CommandTag.json)
            writer.writeBytes(json)
        }
        let formatTwo = [UInt8(2)] + body.bytes
        #expect(try ClusterProposal(encoded: formatTwo) == ClusterProposal(timeMilliseconds: 5, command: command))
        // A format 2 config entry: the same bytes as format 3 after the version.
        var config = Self.proposals[0].encoded()
        config[0] = 2
        #expect(try ClusterProposal(encoded: config) == Self.proposals[0])
    }

    @Test("a task status of format 3 (published ports without their host address) still applies")
    func formatThreeStatusDecodes() throws {
        var body = WireWriter()
        body.writeLengthDelimited { writer in
            writer.writeSigned(7)
            writer.writeTag(ClusterProposal.CommandTag.updateTaskStatus)
            writer.writeString("t1")
            writer.writeVarint(UInt64(ServiceTask.State.running.rawValue))
            writer.writeSigned(12)
            writer.writeString("started")
            writer.writeString("")
            writer.writeOptional(Int32?.none) { writer, code in writer.writeSigned(Int64(code)) }
            writer.writeString("abc")
            writer.writeOptional(ServiceTask.Health?.none) { writer, health in writer.writeString(health.rawValue) }
            writer.writeArray([30_000]) { writer, port in
                writer.writeSigned(Int64(port))
                writer.writeSigned(80)
                writer.writeString("tcp")
                writer.writeString("host")
            }
        }
        let formatThree = [UInt8(3)] + body.bytes
        let status = ServiceTask.Status(state: .running, timestampMilliseconds: 12, message: "started", containerID: "abc",
                                        publishedPorts: [.init(publishedPort: 30_000, targetPort: 80)])
        #expect(try ClusterProposal(encoded: formatThree) == ClusterProposal(timeMilliseconds: 7, command: .updateTaskStatus(id: "t1", status: status)))
        // The same status written now carries the address.
        var bound = status
        bound.publishedPorts[0].hostAddress = "127.0.0.1"
        let now = ClusterProposal(timeMilliseconds: 7, command: .updateTaskStatus(id: "t1", status: bound))
        #expect(try ClusterProposal(encoded: now.encoded()) == now)
    }

    @Test("JSON entries written by earlier managers (format 1) still apply")
    func jsonEntriesDecode() throws {
        for proposal in Self.proposals {
            var old = proposal
            old.formatVersion = 1
            let json = Array(try JSONEncoder().encode(old))
            #expect(json.first == UInt8(ascii: "{"))
            #expect(try ClusterProposal(encoded: json).command == proposal.command)
        }
    }

    @Test("entries from a newer format, truncated or corrupt ones are refused with undecodableCommand")
    func badEntries() {
        let good = Self.proposals[0].encoded()
        var newer = good
        newer[0] = 5
        let small = ClusterProposal(timeMilliseconds: 1, command: .removeConfig(id: "c1")).encoded()
        var badTag = small
        badTag[3] = 0x7f  // version, body length, time, then the tag
        var badID = small
        badID[badID.count - 1] = UInt8(ascii: "!")
        var badState = ClusterProposal(timeMilliseconds: 1, command: .setTaskDesiredState(id: "t1", expectedVersion: nil, desiredState: .running)).encoded()
        badState[badState.count - 1] = 0x7f  // the desired state, last
        for bytes in [newer, badTag, badID, badState, Array(good.dropLast()), [], [2]] {
            #expect {
                _ = try ClusterProposal(encoded: bytes)
            } throws: { error in
                if case .undecodableCommand = error as? ClusterStateError { return true }
                return false
            }
        }
    }

    @Test("applying a binary entry is the same as applying its command")
    func applyBinaryEntry() throws {
        var fromEntry = ClusterState()
        try fromEntry.apply(entryData: Self.proposals[0].encoded(), index: 1)
        var direct = ClusterState()
        try direct.apply(Self.proposals[0].command, context: ApplyContext(index: 1, timeMilliseconds: Self.proposals[0].timeMilliseconds))
        #expect(fromEntry == direct)
    }
}

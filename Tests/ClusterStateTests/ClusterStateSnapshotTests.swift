import struct Raft.SeededGenerator
import Testing
@testable import ClusterState


@Suite("ClusterState snapshots and determinism")
struct ClusterStateSnapshotTests {
    /// A random sequence of commands, some of which fail (as in real life).
    static func randomCommands(seed: UInt64, count: Int) -> [ClusterCommand] {
        var generator = SeededGenerator(seed: seed)
        var commands: [ClusterCommand] = []
        var serviceIDs: [ObjectID] = []
        var taskIDs: [ObjectID] = []
        var nodeIDs: [ObjectID] = []
        for step in 0..<count {
            let choice = generator.next() % 9
            switch choice {
            case 0:
                let id = ObjectID.random(using: &generator)
                nodeIDs.append(id)
                commands.append(.createNode(id: id, spec: .init(role: .worker, labels: ["zone": "z\(generator.next() % 3)"]),
                                            status: .init(state: .ready, hostname: "h\(step)"), managerStatus: nil))
            case 1, 2:
                let id = ObjectID.random(using: &generator)
                serviceIDs.append(id)
                commands.append(.createService(id: id, spec: webSpec(replicas: Int(generator.next() % 5), name: "svc\(generator.next() % 20)")))
            case 3 where !serviceIDs.isEmpty:
                let service = serviceIDs[Int(generator.next() % UInt64(serviceIDs.count))]
                let id = ObjectID.random(using: &generator)
                taskIDs.append(id)
                commands.append(.createTasks([.init(id: id, serviceID: service, slot: Int(generator.next() % 4))]))
            case 4 where !taskIDs.isEmpty && !nodeIDs.isEmpty:
                let task = taskIDs[Int(generator.next() % UInt64(taskIDs.count))]
                commands.append(.assignTask(id: task, expectedVersion: generator.next() % UInt64(step + 1), nodeID: nodeIDs[Int(generator.next() % UInt64(nodeIDs.count))]))
            case 5 where !taskIDs.isEmpty:
                let task = taskIDs[Int(generator.next() % UInt64(taskIDs.count))]
                let state = ServiceTask.State.allCases[Int(generator.next() % UInt64(ServiceTask.State.allCases.count))]
                commands.append(.updateTaskStatus(id: task, status: .init(state: state, message: "m\(step)")))
            case 6 where !serviceIDs.isEmpty:
                let service = serviceIDs[Int(generator.next() % UInt64(serviceIDs.count))]
                commands.append(.removeService(id: service, expectedVersion: nil))
            case 7:
                commands.append(.createSecret(id: ObjectID.random(using: &generator), spec: .init(name: "sec\(generator.next() % 10)", data: [UInt8(step & 0xff)])))
            default:
                if !nodeIDs.isEmpty {
                    let node = nodeIDs[Int(generator.next() % UInt64(nodeIDs.count))]
                    commands.append(.updateNodeStatus(id: node, status: .init(state: .down, message: "missed heartbeats")))
                }
            }
        }
        return commands
    }

    static func replay(_ commands: [ClusterCommand]) -> ClusterState {
        var applier = Applier()
        for command in commands { _ = try? applier.apply(command, time: Int64(applier.index) * 10) }
        return applier.state
    }

    @Test("snapshot and restore are exact on random states", arguments: 1...25)
    func snapshotRoundTrip(seed: UInt64) throws {
        let state = Self.replay(Self.randomCommands(seed: seed, count: 300))
        let bytes = state.snapshot()
        let restored = try ClusterState(snapshot: bytes)
        #expect(restored == state)
        #expect(restored.snapshot() == bytes)
    }

    @Test("the same commands give the same state and the same snapshot bytes")
    func deterministic() {
        let commands = Self.randomCommands(seed: 99, count: 500)
        let first = Self.replay(commands)
        let second = Self.replay(commands)
        #expect(first == second)
        #expect(first.snapshot() == second.snapshot())
        #expect(!first.tasks.isEmpty)
    }

    @Test("a restored state keeps applying like the original")
    func restoredStateContinues() throws {
        let commands = Self.randomCommands(seed: 7, count: 400)
        var original = Applier()
        for command in commands.prefix(200) { _ = try? original.apply(command) }
        var restored = Applier(state: try ClusterState(snapshot: original.state.snapshot()), index: original.index)
        for command in commands.dropFirst(200) {
            _ = try? original.apply(command)
            _ = try? restored.apply(command)
        }
        #expect(original.state == restored.state)
    }

    @Test("garbage is not a snapshot")
    func badSnapshot() {
        #expect(throws: ClusterStateError.self) { try ClusterState(snapshot: Array("garbage".utf8)) }
        #expect(throws: ClusterStateError.self) { try ClusterState(snapshot: Array(#"{"formatVersion": 99}"#.utf8)) }
    }
}

import struct Raft.SeededGenerator
import Testing
@testable import ClusterState

@Suite("ClusterState.validate agrees with apply")
struct ClusterStateValidateTests {
    /// The random commands of the snapshot tests, plus configs (with reused
    /// names and unknown ids), node and config removals and batches, among
    /// them agents' status batches (distinct tasks, checked without a copy;
    /// some go backwards or name unknown tasks), so that every kind of
    /// refusal shows up.
    static func commands(seed: UInt64, count: Int) -> [ClusterCommand] {
        var generator = SeededGenerator(seed: seed &+ 1_000)
        var configIDs: [ObjectID] = []
        var taskIDs: [ObjectID] = []
        var result: [ClusterCommand] = []
        let states: [ServiceTask.State] = [.assigned, .preparing, .running, .complete, .failed]
        for command in ClusterStateSnapshotTests.randomCommands(seed: seed, count: count) {
            result.append(command)
            if case .createTasks(let tasks) = command { taskIDs += tasks.map(\.id) }
            switch generator.next() % 7 {
            case 4 where taskIDs.count >= 3:
                var ids = Set<ObjectID>()
                while ids.count < 3 { ids.insert(taskIDs[Int(generator.next() % UInt64(taskIDs.count))]) }
                if generator.next() % 4 == 0 { ids.insert(ObjectID.random(using: &generator)) }
                result.append(.batch(ids.sorted().map { id in
                    .updateTaskStatus(id: id, status: .init(state: states[Int(generator.next() % UInt64(states.count))]))
                }))
            case 0:
                let id = ObjectID.random(using: &generator)
                configIDs.append(id)
                result.append(.createConfig(id: id, spec: .init(name: "cfg\(generator.next() % 8)", data: [1, 2, 3])))
            case 1 where !configIDs.isEmpty:
                result.append(.removeConfig(id: configIDs[Int(generator.next() % UInt64(configIDs.count))]))
            case 2:
                // Two creates under one name: the second one must refuse the whole batch.
                let name = "pair\(generator.next() % 4)"
                result.append(.batch([
                    .createConfig(id: ObjectID.random(using: &generator), spec: .init(name: name, data: [])),
                    .createConfig(id: ObjectID.random(using: &generator), spec: .init(name: generator.next() % 2 == 0 ? name : name + "b", data: [])),
                ]))
            case 3:
                result.append(.removeNode(id: ObjectID.random(using: &generator), expectedVersion: nil))
            default:
                break
            }
        }
        return result
    }

    @Test("validate throws exactly what apply throws, and changes nothing", arguments: 1...20)
    func agreesWithApply(seed: UInt64) {
        var state = ClusterState()
        var index: UInt64 = 0
        var refused = 0
        for command in Self.commands(seed: seed, count: 300) {
            index += 1
            let context = ApplyContext(index: index, timeMilliseconds: Int64(index) * 10)
            let before = state
            let validation: ClusterStateError?
            do throws(ClusterStateError) {
                try state.validate(command, context: context)
                validation = nil
            } catch {
                validation = error
            }
            #expect(state == before, "validate changed the state on \(command)")
            let application: ClusterStateError?
            do throws(ClusterStateError) {
                try state.apply(command, context: context)
                application = nil
            } catch {
                application = error
            }
            #expect(validation == application, "\(command): validate says \(String(describing: validation)), apply says \(String(describing: application))")
            if application != nil { refused += 1 }
        }
        #expect(refused > 0)
    }
}

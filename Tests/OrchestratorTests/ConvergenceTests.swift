import struct Raft.SeededGenerator
import ClusterState
import Orchestrator
import Scheduler
import Testing

/// Orchestrator, scheduler and fake agents in one loop over a ClusterState,
/// with faults, as the simulator will run them: safety invariants after every
/// applied command, convergence once the faults stop.
@Suite("Orchestrator + Scheduler + agents converge")
struct ConvergenceTests {
    static let nodes: [ObjectID] = ["n1", "n2", "n3", "n4", "n5", "n6"]

    static func setUp() -> Harness {
        var harness = Harness()
        for (position, node) in nodes.enumerated() {
            harness.addNode(node, labels: ["zone": "z\(position % 3)"], memoryGiB: 16)
        }
        harness.createService("web", mode: .replicated(replicas: 6)) {
            $0.placement.preferences = ["spread=node.labels.zone"]
            $0.resources.reservedMemoryBytes = 2 * Harness.gibibyte
            $0.restartPolicy = .init(condition: .any, delayMilliseconds: 500)
        }
        harness.createService("api", mode: .replicated(replicas: 3)) {
            $0.placement.maxReplicasPerNode = 1
            $0.ports = [.init(publishedPort: 8080, targetPort: 80)]
        }
        // Random task failures would pause its forced updates (the default failure action); this run wants them to go on.
        harness.updateService("api") { $0.update.failureAction = .continue }
        harness.createService("agent", mode: .global)
        harness.createService("batch", mode: .replicatedJob(completions: 8, maxConcurrent: 3)) {
            $0.restartPolicy = .init(condition: .onFailure, delayMilliseconds: 200)
        }
        return harness
    }

    /// One round: reconcile, schedule, agents act (failing some starts), jobs finish.
    static func round(_ harness: inout Harness, random: inout SeededGenerator, failurePercent: UInt64) {
        harness.time += 1_000
        harness.reconcile()
        harness.schedule()
        harness.runAgents { _ in random.next() % 100 < failurePercent }
        for task in harness.tasks(of: "batch") where task.status.state == .running && random.next() % 2 == 0 {
            harness.end(task.id, .complete)
        }
    }

    @Test("random faults, then healing: services converge and no safety invariant ever breaks", arguments: Array(1...8) as [UInt64])
    func convergesAfterFaults(seed: UInt64) {
        var harness = Self.setUp()
        harness.ids = SeededGenerator(seed: seed)
        var random = SeededGenerator(seed: seed &* 7919)
        for _ in 0..<60 {
            switch random.next() % 10 {
            case 0:
                let node = Self.nodes[Int(random.next() % 6)]
                harness.setNode(node, state: harness.state.node(node)!.status.state == .down ? .ready : .down)
            case 1:
                let node = Self.nodes[Int(random.next() % 6)]
                harness.setNode(node, availability: harness.state.node(node)!.spec.availability == .drain ? .active : .drain)
            case 2:
                if let victim = harness.state.tasks.filter({ $0.status.state == .running }).randomElement(using: &random) {
                    harness.end(victim.id, .failed)
                }
            case 3:
                let replicas = Int(3 + random.next() % 7)
                harness.updateService("web") { $0.mode = .replicated(replicas: replicas) }
            case 4:
                harness.updateService("api", force: true)
            default:
                break
            }
            Self.round(&harness, random: &random, failurePercent: 10)
            #expect(harness.violations.isEmpty, "seed \(seed): \(harness.violations.prefix(3))")
            if !harness.violations.isEmpty { return }
        }
        // Faults heal.
        for node in Self.nodes {
            if harness.state.node(node)!.status.state != .ready { harness.setNode(node, state: .ready) }
            if harness.state.node(node)!.spec.availability != .active { harness.setNode(node, availability: .active) }
        }
        var rounds = 0
        while rounds < 40 && !ServiceInvariants.checkConverged(harness.state).isEmpty {
            Self.round(&harness, random: &random, failurePercent: 0)
            rounds += 1
        }
        #expect(ServiceInvariants.checkConverged(harness.state) == [], "seed \(seed) after \(rounds) healing rounds")
        #expect(harness.violations.isEmpty)
        #expect(harness.refused == 0, "nothing raced in this single-threaded loop")
        // Converged means quiet once rollouts have been monitored and marked
        // complete: another pass proposes nothing but trimming history.
        harness.time += 60_000
        harness.reconcile()
        #expect(harness.state.services.allSatisfy { $0.updateStatus.map { $0.state == .completed } ?? true })
        let quiet = harness.reconcile()
        #expect(quiet.commands.filter { if case .removeTasks = $0 { return false } else { return true } } == [])
        // History stays bounded per slot.
        var terminalPerSlot: [String: Int] = [:]
        for task in harness.state.tasks where task.status.state.isTerminal {
            terminalPerSlot["\(task.serviceID)/\(task.slot)/\(task.slot == 0 ? task.nodeID?.rawValue ?? "" : "")", default: 0] += 1
        }
        #expect(terminalPerSlot.values.allSatisfy { $0 <= Orchestrator.defaultTaskHistoryRetentionPerSlot })
        let api = harness.tasks(of: "api").filter { $0.status.state == .running }.compactMap(\.nodeID)
        #expect(Set(api).count == api.count, "host port 8080 and max one replica per node")
    }

    @Test("the invariants catch what they are named after")
    func invariantsDetectViolations() {
        var harness = Harness()
        harness.addNode("n1")
        harness.addNode("n2")
        harness.createService("web", mode: .replicated(replicas: 1))
        harness.mustApply(.createTasks([.init(id: "a", serviceID: "web", slot: 1), .init(id: "b", serviceID: "web", slot: 1)]))
        #expect(ServiceInvariants.atMostOneDesiredRunningTaskPerSlot(harness.state).map(\.invariant) == ["atMostOneDesiredRunningTaskPerSlot"])
        let before = harness.state
        harness.mustApply(.assignTask(id: "a", expectedVersion: harness.state.task("a")!.meta.version, nodeID: "n1"))
        #expect(ServiceInvariants.noTaskAssignedToTwoNodes(previous: before, current: harness.state).isEmpty)
        #expect(Set(ServiceInvariants.servicesConverged(harness.state).map(\.invariant)) == ["servicesConverged"])
    }
}

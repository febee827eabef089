import ClusterState
import Orchestrator
import Raft

/// The operator of `shoal-sim services`: one API client that creates the
/// services, then in the fault phase updates their image (a rolling
/// update), scales them, and drains or reactivates nodes, each a
/// compare-and-set write on the version it read from the leader. A write
/// is acknowledged when the leader that proposed it applies it.
extension ServicesSimulation {
    struct OperatorCall {
        var sequence: UInt64
        var serviceID: ObjectID?
        /// The spec's position in ``ServicesInvariants/proposedSpecs``.
        var position: Int
        var what: String
    }

    func operatorStep() throws(InvariantViolation) {
        guard operatorCall == nil else { return }
        guard let leader = currentLeader(), let shell = shell(leader.id), shell.ledTerm == leader.node!.term else {
            queue.schedule(.operatorStep, at: now + 50)
            return
        }
        let state = leader.cluster
        var command: ClusterCommand?
        var call = OperatorCall(sequence: nextOperatorSequence, serviceID: nil, position: -1, what: "")
        if let missing = workload.services.first(where: { state.service($0.id) == nil && invariants.acknowledged[$0.id] == nil }) {
            command = .createService(id: missing.id, spec: missing.spec)
            call.serviceID = missing.id
            call.position = invariants.proposed(missing.spec, for: missing.id)
            call.what = "create service \(missing.spec.name)"
        } else if inFaultPhase {
            command = operatorChange(state, call: &call)
        } else {
            return  // healed: the operator is done
        }
        guard let command else {
            queue.schedule(.operatorStep, at: now + operatorRandom.uniform(plan.services.operatorIntervalMs))
            return
        }
        nextOperatorSequence += 1
        statistics.operatorCalls += 1
        record("operator #\(call.sequence) at manager \(leader.id): \(call.what)")
        guard propose(command, at: leader, waiting: .operatorCall(sequence: call.sequence)) != nil else {
            queue.schedule(.operatorStep, at: now + 50)
            return
        }
        operatorCall = call
        queue.schedule(.operatorTimeout(sequence: call.sequence), at: now + Self.operatorTimeoutMs)
        try drain(leader)
    }

    /// A random change: an image update, a scale, a drain or reactivation.
    private func operatorChange(_ state: ClusterState, call: inout OperatorCall) -> ClusterCommand? {
        let replicated = workload.services.filter { if case .replicated = $0.spec.mode { return true } else { return false } }
        let roll = operatorRandom.uniform(0...9)
        if roll < 6 {
            guard let service = state.service(operatorRandom.pick(replicated).id), case .replicated(let replicas) = service.spec.mode else { return nil }
            var spec = service.spec
            if roll < 3 {
                let version = Int(spec.task.image.split(separator: ":").last.map(String.init) ?? "1") ?? 1
                spec.task.image = "\(spec.name):\(version + 1)"
                call.what = "update \(spec.name) to \(spec.task.image)"
            } else {
                let base = workload.services.first { $0.id == service.id }!.spec.mode
                guard case .replicated(let original) = base else { return nil }
                let change = max(1, original / 10)
                let scaled = max(1, min(original + change, replicas + (operatorRandom.chance(0.5) ? change : -change)))
                spec.mode = .replicated(replicas: scaled)
                call.what = "scale \(spec.name) from \(replicas) to \(scaled)"
            }
            call.serviceID = service.id
            call.position = invariants.proposed(spec, for: service.id)
            return .updateService(id: service.id, expectedVersion: service.meta.version, spec: spec, force: false)
        }
        let nodes = state.nodes.filter { $0.spec.role == .worker }
        guard !nodes.isEmpty else { return nil }
        let drained = nodes.filter { $0.spec.availability == .drain }
        let node: Node
        var spec: Node.Spec
        if !drained.isEmpty && (drained.count * 20 >= nodes.count || operatorRandom.chance(0.4)) {
            node = operatorRandom.pick(drained)
            spec = node.spec
            spec.availability = .active
            call.what = "activate node \(node.id)"
        } else {
            node = operatorRandom.pick(nodes)
            spec = node.spec
            spec.availability = .drain
            call.what = "drain node \(node.id)"
        }
        return .updateNodeSpec(id: node.id, expectedVersion: node.meta.version, spec: spec)
    }

    func operatorAnswered(sequence: UInt64, outcome: Result<[ClusterEvent], ClusterStateError>, index: UInt64) throws(InvariantViolation) {
        guard let call = operatorCall, call.sequence == sequence else { return }
        operatorCall = nil
        switch outcome {
        case .success:
            statistics.writesAcknowledged += 1
            if let serviceID = call.serviceID {
                invariants.acknowledge(serviceID, version: index, position: call.position)
            }
            record("operator #\(sequence) acknowledged at index \(index)")
        case .failure(let error):
            if case .versionConflict = error { statistics.versionConflicts += 1 }
            record("operator #\(sequence) refused: \(RaftSimulation.reason(error))")
        }
        let creating = workload.services.contains { invariants.acknowledged[$0.id] == nil }
        queue.schedule(.operatorStep, at: now + (inFaultPhase && !creating ? operatorRandom.uniform(plan.services.operatorIntervalMs) : 10))
    }

    /// No answer: the outcome is unknown (the spec stays among those that may be applied).
    func operatorTimedOut(sequence: UInt64) {
        guard let call = operatorCall, call.sequence == sequence else { return }
        operatorCall = nil
        statistics.operationsWithUnknownOutcome += 1
        record("operator #\(sequence) timed out")
        queue.schedule(.operatorStep, at: now + 10)
    }
}

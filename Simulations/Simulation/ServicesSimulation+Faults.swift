import ClusterState
import Orchestrator
import Raft

/// The fault injector of `shoal-sim services`, the healing that ends the
/// fault phase, and the checks that judge the run.
extension ServicesSimulation {
    func nemesis() {
        guard let action = nemesisRandom.weightedIndex([plan.partitionWeight, plan.crashWeight, plan.services.workerDeathWeight]) else { return }
        switch action {
        case 0: partition()
        case 1: crashManager()
        default: killWorkers()
        }
    }

    private func partition() {
        if healedInsteadOfPartitioning() { return }
        let ids = members.map(\.id)
        var links: [(from: NodeID, to: NodeID)] = []
        var what = ""
        if let leader = currentLeader()?.id, nemesisRandom.chance(0.5) {
            for other in ids where other != leader { links += [(leader, other), (other, leader)] }
            what = "leader \(leader) isolated"
        } else {
            let (side, other) = nemesisRandom.twoSides(of: ids)
            for a in side {
                for b in other { links += [(a, b), (b, a)] }
            }
            what = "\(side) | \(other)"
        }
        cut(links, hashTag: 0x5041_5254, what: what)  // "PART"
    }

    private func crashManager() {
        guard let victim = crashVictim() else { return }
        crash(victim, why: "(power cut)")
    }

    private func killWorkers() {
        let count = nemesisRandom.uniform(plan.services.workersPerDeath)
        for _ in 0..<count {
            kill(workers[nemesisRandom.uniform(0...(workers.count - 1))])
        }
    }

    // MARK: Healing and convergence

    /// Ends the fault phase: the network calms down, crashed managers and
    /// dead workers restart, containers stop crashing, the operator stops
    /// changing things; then every service must converge.
    func endFaults() throws(InvariantViolation) {
        beginHealing("network healed, crashed managers and dead workers restart")
        for member in members where !member.isRunning { try restart(member) }
        for worker in workers where !worker.isAlive { restartWorker(worker) }
        queue.schedule(.convergenceCheck, at: now + Self.convergenceCheckIntervalMs)
    }

    /// After healing: the leader's state has converged and the containers match it.
    func checkConvergence() throws(InvariantViolation) {
        guard let healedAt else { return }
        var problems: [String]
        if let leader = currentLeader(), let shell = shell(leader.id), shell.ledTerm == leader.node!.term {
            let state = leader.cluster
            if operatorCall != nil || workload.services.contains(where: { state.service($0.id) == nil }) {
                problems = ["the operator has not created every service yet"]
            } else {
                problems = ServicesInvariants.servicesConverged(state, containers: runningContainers())
            }
            if let dead = workers.first(where: { !$0.isAlive || $0.sessionManager == nil }) {
                problems.append("worker \(dead.index) has no session")
            }
            if problems.isEmpty {
                try invariants.noServiceSpecLost(state, member: leader.id, time: now)
                statistics.convergedAfterMs = max(statistics.convergedAfterMs, now - healedAt)
                record("converged \(now - healedAt) ms after healing: \(state.tasks.filter { $0.status.state == .running }.count) tasks running")
                finished = true
                return
            }
        } else {
            problems = ["no leader"]
        }
        try ServicesInvariants.servicesConvergeAfterHealing(problems: problems, healedAt: healedAt, now: now, boundMs: options.livenessBoundMs)
        queue.schedule(.convergenceCheck, at: now + Self.convergenceCheckIntervalMs)
    }

    /// Every container running on a live worker, by worker then task.
    func runningContainers() -> [(nodeID: ObjectID, taskID: ObjectID)] {
        var containers: [(nodeID: ObjectID, taskID: ObjectID)] = []
        for worker in workers where worker.isAlive {
            for id in worker.records.keys.sorted() where worker.records[id]!.container == .running || worker.records[id]!.container == .stopping {
                containers.append((worker.nodeID, id))
            }
        }
        return containers
    }

    /// The state-level invariants on the leader's state, against the last
    /// state checked (if this one is not older), and no acknowledged spec lost.
    func safetyCheck() throws(InvariantViolation) {
        guard let member = currentLeader() ?? members.first(where: \.isRunning) else { return }
        let state = member.cluster
        if let previous = previousSafetyState, previous.appliedIndex <= state.appliedIndex {
            try ServicesInvariants.stateStaysSafe(previous: previous, current: state, time: now)
        }
        if previousSafetyState == nil || previousSafetyState!.appliedIndex <= state.appliedIndex { previousSafetyState = state }
        try invariants.noServiceSpecLost(state, member: member.id, time: now)
        statistics.safetyChecks += 1
    }

    func finalChecks() throws(InvariantViolation) {
        for member in members where member.isRunning {
            try invariants.noServiceSpecLost(member.cluster, member: member.id, time: now)
        }
        record("passed: \(statistics.containersStarted) containers started, \(statistics.nodesMarkedDown) nodes marked down, converged \(statistics.convergedAfterMs) ms after healing")
    }
}

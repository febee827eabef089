import ClusterState
import Orchestrator
import Raft
import Scheduler

/// The managers' side of `shoal-sim services`: the leader's loop around
/// ``LeaderCycle`` (as Sources/Daemon/LeaderLoop.swift) and the
/// Dispatcher's handling of agent calls (as Sources/Daemon/Dispatcher.swift).
extension ServicesSimulation {
    // MARK: The leader's loop

    func leaderCheck(_ member: SimulatedMember) throws(InvariantViolation) {
        // (No `let node = member.node` held across a proposal: that copy would
        // make the proposal copy the whole log.)
        guard member.node?.role == .leader, let shell = shell(member.id) else {
            shell(member.id)?.ledTerm = 0
            shell(member.id)?.schedulingIndex = nil
            return
        }
        let term = member.node!.term
        if shell.ledTerm != term {
            // Not before this term's first entry is applied: the state may
            // lack entries an earlier leader committed.
            guard member.node!.term(at: member.appliedIndex) == term else { return }
            shell.ledTerm = term
            shell.passBarrier = 0
            shell.heartbeats.leadershipStarted(member.cluster, now: Int64(now))
            shell.cycle.leadershipStarted()
            shell.schedulingIndex = SchedulingIndex(tasks: member.cluster.tasks)
            record("manager \(member.id) starts leading term \(term) at applied index \(member.appliedIndex)")
        }
        let expired = shell.heartbeats.expire(now: Int64(now))
        let markDown = shell.heartbeats.markDownCommands(expired, in: member.cluster)
        if !markDown.isEmpty {
            statistics.nodesMarkedDown += markDown.count
            record("manager \(member.id) marks down \(markDown.count) nodes: \(expired.map(\.rawValue).joined(separator: ","))")
            for proposal in LeaderCycle.proposals(markDown) { propose(proposal, at: member, waiting: .loop(proposal)) }
        }
        if member.appliedIndex >= shell.passBarrier && shell.cycle.isPassDue(now: Int64(now)) {
            let scheduler = shell.cycle.scheduler
            let pass = shell.cycle.pass(member.cluster, now: Int64(now), idGenerator: &shell.idGenerator) { state in
                shell.schedulingIndex!.schedule(with: scheduler, nodes: state.nodes, task: { state.task($0) })
            }
            statistics.leaderPasses += 1
            statistics.assignments += pass.assignmentCount
            hasher.combine(0x5041_5353)  // "PASS"
            hasher.combine(UInt64(pass.reconcileCommands.count))
            hasher.combine(UInt64(pass.placementCommands.count))
            for proposal in LeaderCycle.proposals(pass.reconcileCommands) + LeaderCycle.proposals(pass.placementCommands) {
                if let index = propose(proposal, at: member, waiting: .loop(proposal)) { shell.passBarrier = index }
            }
        }
        try drain(member)
    }

    /// Proposes `command` at `member` (the caller drains it); nil if it is not the leader.
    @discardableResult
    func propose(_ command: ClusterCommand, at member: SimulatedMember, waiting: SimulatedManager.Waiting?) -> UInt64? {
        guard member.isRunning, let shell = shell(member.id) else { return nil }
        let data = ClusterProposal(timeMilliseconds: Int64(now), command: command).encoded()
        guard let index = try? member.node!.propose(data) else { return nil }
        if let waiting { shell.waiting[index] = (member.node!.term, waiting) }
        return index
    }

    /// A proposal of `member`'s was applied there (or another entry took its index).
    func resolve(_ waiting: SimulatedManager.Waiting, proposedInTerm term: UInt64, entry: Entry, outcome: Result<[ClusterEvent], ClusterStateError>,
                 on member: SimulatedMember, shell: SimulatedManager) throws(InvariantViolation) {
        let ours = entry.term == term
        let succeeded: Bool
        if case .success = outcome { succeeded = ours } else { succeeded = false }
        switch waiting {
        case .loop(let command):
            // As LeaderLoop.propose: a refused batch goes again command by command.
            if ours, !succeeded, case .batch(let commands) = command, member.node?.role == .leader {
                for single in commands { propose(single, at: member, waiting: nil) }
            }
        case .worker(let worker, let via, let epoch, let sequence, let command):
            if ours, !succeeded, case .batch(let commands) = command, member.node?.role == .leader {
                // As Dispatcher.reportStatus: one stale report refuses the batch; send the rest alone.
                for single in commands { propose(single, at: member, waiting: nil) }
                reply(.answered(epoch: epoch, sequence: sequence), to: worker, from: member.id, via: via)
            } else if succeeded {
                reply(.answered(epoch: epoch, sequence: sequence), to: worker, from: member.id, via: via)
            } else {
                reply(.refused(epoch: epoch, sequence: sequence, leaderHint: member.node?.leader ?? 0), to: worker, from: member.id, via: via)
            }
        case .operatorCall(let sequence):
            if ours { try operatorAnswered(sequence: sequence, outcome: outcome, index: entry.index) }
        }
    }

    // MARK: The Dispatcher

    /// A worker's call reaches the manager its session is (being) opened on.
    func managerReceives(_ call: WorkerCall, from index: Int, at id: NodeID) throws(InvariantViolation) {
        guard let member = member(id), member.isRunning, let shell = shell(id) else { return }  // the worker times out
        let role = member.node!.role, leaderID = member.node!.leader
        let worker = workers[index]
        hasher.combine(0x4341_4c4c)  // "CALL"
        hasher.combine((UInt64(index) << 8) | id)
        if case .openSession(let epoch, _) = call {
            // The agent closed its older connections.
            for other in managers.compactMap({ $0 }) where other !== shell {
                if other.sessions.removeValue(forKey: index) != nil { other.sessionWorkerByNode[worker.nodeID] = nil }
            }
            if let old = shell.sessions[index], old.epoch != epoch { shell.sessions[index] = nil }
            // The full list as of this manager's state; later changes follow as they apply.
            let tasks = member.cluster.tasks(onNode: worker.nodeID).filter(DispatchRules.concerns)
            var session = SimulatedManager.Session(epoch: epoch)
            for task in tasks { session.sentDesired[task.id] = task.desiredState }
            shell.sessions[index] = session
            shell.sessionWorkerByNode[worker.nodeID] = index
            sendToWorker(worker, .assignments(epoch: epoch, full: true, tasks: tasks, removed: []))
        } else if shell.sessions[index]?.epoch != call.epoch {
            sendToWorker(worker, .refused(epoch: call.epoch, sequence: call.sequence, leaderHint: leaderID))
            return
        }
        if role == .leader {
            try leaderReceives(call, from: index, via: id, at: id)
        } else if leaderID != 0, let leader = self.member(leaderID), leader.isRunning, !network.isCut(from: id, to: leaderID) {
            queue.schedule(.forwardedCall(worker: index, via: id, leader: leaderID, call: call), at: now + networkRandom.uniform(plan.network.baseDelayMs))
        } else {
            sendToWorker(worker, .refused(epoch: call.epoch, sequence: call.sequence, leaderHint: leaderID))
        }
    }

    /// The leader handles a worker's call (its own session's, or forwarded `via` a follower).
    func leaderReceives(_ call: WorkerCall, from index: Int, via: NodeID, at id: NodeID) throws(InvariantViolation) {
        let worker = workers[index]
        guard let member = member(id), member.node?.role == .leader, let shell = shell(id),
              via == id || !network.isCut(from: via, to: id)
        else {
            reply(.refused(epoch: call.epoch, sequence: call.sequence, leaderHint: member(id)?.node?.leader ?? 0), to: index, from: id, via: via)
            return
        }
        switch call {
        case .openSession(let epoch, let sequence):
            shell.heartbeats.beat(worker.nodeID, now: Int64(now))
            let command: ClusterCommand?
            if member.cluster.node(worker.nodeID) == nil {
                command = .createNode(id: worker.nodeID, spec: worker.spec,
                                      status: Node.Status(state: .ready, hostname: worker.nodeID.rawValue, resources: worker.resources),
                                      managerStatus: nil)
            } else {
                command = HeartbeatTracker.readyCommand(for: worker.nodeID, in: member.cluster)
            }
            if let command, propose(command, at: member, waiting: .worker(worker: index, via: via, epoch: epoch, sequence: sequence, command: command)) != nil {
                try drain(member)
            } else {
                reply(.answered(epoch: epoch, sequence: sequence), to: index, from: id, via: via)
            }
        case .heartbeat(let epoch, let sequence):
            shell.heartbeats.beat(worker.nodeID, now: Int64(now))
            if let command = HeartbeatTracker.readyCommand(for: worker.nodeID, in: member.cluster) {
                propose(command, at: member, waiting: nil)
                try drain(member)
            }
            reply(.answered(epoch: epoch, sequence: sequence), to: index, from: id, via: via)
        case .status(let epoch, let sequence, let reports):
            let commands = DispatchRules.statusCommands(reports, from: worker.nodeID, in: member.cluster)
            if commands.isEmpty {
                reply(.answered(epoch: epoch, sequence: sequence), to: index, from: id, via: via)
                return
            }
            let command = commands.count == 1 ? commands[0] : .batch(commands)
            if propose(command, at: member, waiting: .worker(worker: index, via: via, epoch: epoch, sequence: sequence, command: command)) != nil {
                try drain(member)
            } else {
                reply(.refused(epoch: epoch, sequence: sequence, leaderHint: member.node?.leader ?? 0), to: index, from: id, via: via)
            }
        }
    }

    /// An answer from the leader `from` to a worker whose session is on `via`.
    func reply(_ message: WorkerMessage, to index: Int, from id: NodeID, via: NodeID) {
        if id != via && (network.isCut(from: id, to: via) || member(via)?.isRunning != true) { return }
        sendToWorker(workers[index], message, extraDelay: id == via ? 0 : networkRandom.uniform(plan.network.baseDelayMs))
    }

    /// Down the worker's session stream: ordered, delayed, never lost while the worker lives.
    func sendToWorker(_ worker: SimulatedWorker, _ message: WorkerMessage, extraDelay: UInt64 = 0) {
        let arrival = max(now + extraDelay + networkRandom.uniform(plan.network.baseDelayMs), worker.lastArrivalAtWorker)
        worker.lastArrivalAtWorker = arrival
        queue.schedule(.workerReceives(worker: worker.index, message: message), at: arrival)
    }
}

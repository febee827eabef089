import Raft

/// The fault injector of the fault phase, and the healing that ends it.
extension RaftSimulation {
    func nemesis() throws(InvariantViolation) {
        guard let action = nemesisRandom.weightedIndex([plan.partitionWeight, plan.crashWeight, plan.raft.membershipWeight, plan.raft.transferWeight]) else { return }
        switch action {
        case 0: partition()
        case 1: crashSomeone()
        case 2: try changeMembership()
        default: try transferLeadership()
        }
    }

    /// Members of the group that are not shut down, ascending.
    private func groupIDs() -> [NodeID] {
        committedConfiguration.members.filter { member($0).map { !$0.isStopped } ?? false }
    }

    private func partition() {
        if healedInsteadOfPartitioning() { return }
        let ids = groupIDs()
        guard ids.count > 1 else { return }
        var links: [(from: NodeID, to: NodeID)] = []
        var what = ""
        let leader = currentLeader()?.id
        switch nemesisRandom.uniform(0...4) {
        case 0, 1:
            // Symmetric: two sides that cannot talk to each other.
            let (side, other) = nemesisRandom.twoSides(of: ids)
            for a in side {
                for b in other { links += [(a, b), (b, a)] }
            }
            what = "symmetric \(side) | \(other)"
        case 2:
            // Asymmetric: some directed links only.
            for a in ids {
                for b in ids where a != b && nemesisRandom.chance(0.35) { links.append((a, b)) }
            }
            what = "asymmetric \(links.map { "\($0.from)->\($0.to)" }.joined(separator: ","))"
        case 3:
            guard let leader else { return }
            for other in ids where other != leader { links += [(leader, other), (other, leader)] }
            what = "leader \(leader) isolated"
        default:
            guard let leader else { return }
            let outbound = nemesisRandom.chance(0.5)
            for other in ids where other != leader { links.append(outbound ? (leader, other) : (other, leader)) }
            what = outbound ? "leader \(leader) cannot send" : "leader \(leader) cannot hear"
        }
        guard !links.isEmpty else { return }
        cut(links, hashTag: 0x5041_5254, what: what)  // "PART"
    }

    func isolate(_ leader: NodeID, why: String) {
        var links: [(from: NodeID, to: NodeID)] = []
        for other in groupIDs() where other != leader { links += [(leader, other), (other, leader)] }
        guard !links.isEmpty else { return }
        cut(links, hashTag: 0x4953_4f4c, hashWord: leader, what: "leader \(leader) isolated \(why)")  // "ISOL"
    }

    private func crashSomeone() {
        guard let victim = crashVictim() else { return }
        if nemesisRandom.chance(plan.raft.crashAtReadyProbability) {
            victim.crashAtNextReady = true
            record("member \(victim.id) will crash at its next Ready, before persisting")
        } else {
            crash(victim, why: "(power cut)")
        }
        if nemesisRandom.chance(plan.raft.isolateLeaderAfterCrashProbability) {
            queue.schedule(.isolateLeader, at: now + nemesisRandom.uniform(UInt64(0)...40))
        }
    }

    /// One single-server change (dissertation §4.1): promote a learner that
    /// has caught up, add a spare as a learner, or remove a member.
    private func changeMembership() throws(InvariantViolation) {
        guard let leader = currentLeader(), let node = leader.node else { return }
        let configuration = node.configuration
        if let learner = configuration.learners.first {
            guard let joining = member(learner), joining.isRunning, joining.appliedIndex + 3 >= node.commitIndex else { return }
            try propose(.promote(learner), at: leader)
            return
        }
        let canAdd = configuration.members.count < Self.maxGroupMembers && nextSpareID <= lastSpareID
        let canRemove = configuration.voters.count > Self.minVoters
        if canAdd && (!canRemove || nemesisRandom.chance(0.5)) {
            let id = nextSpareID
            nextSpareID += 1
            let joining = makeMember(id)
            joining.node = try? RaftNode(options: joining.options, restoring: .empty)
            scheduleFirstTick(joining)
            record("member \(id) started empty, to join")
            if try !propose(.addLearner(id), at: leader) {
                joining.node = nil
                joining.isStopped = true
            }
        } else if canRemove {
            try propose(.remove(nemesisRandom.pick(configuration.voters)), at: leader)
        }
    }

    @discardableResult
    private func propose(_ change: ConfigurationChange, at leader: SimulatedMember) throws(InvariantViolation) -> Bool {
        do {
            let index = try leader.node!.proposeConfChange(change)
            record("member \(leader.id) proposed \(change) at index \(index)")
        } catch {
            record("member \(leader.id) refused \(change): \(error)")
            return false
        }
        try drain(leader)
        return true
    }

    private func transferLeadership() throws(InvariantViolation) {
        guard let leader = currentLeader(), let node = leader.node else { return }
        let others = node.configuration.voters.filter { $0 != leader.id }
        guard !others.isEmpty else { return }
        let target = nemesisRandom.pick(others)
        statistics.transfersRequested += 1
        do {
            try leader.node!.transferLeadership(to: target)
            record("member \(leader.id) transfers leadership to \(target)")
        } catch {
            record("member \(leader.id) refused to transfer leadership to \(target): \(error)")
        }
        try drain(leader)
    }

    // MARK: Healing and liveness

    /// Ends the fault phase: the network calms down, every crashed member of
    /// the group restarts, and the liveness probe starts.
    func endFaults() throws(InvariantViolation) {
        beginHealing("network healed, crashed members restart")
        for member in members where !member.isStopped {
            member.crashAtNextReady = false
            if !member.isRunning { try restart(member) }
        }
        queue.schedule(.livenessProbe, at: now)
    }

    /// Proposes a write at the leader until one commits, then waits for every
    /// member of the group to apply it and for the clients to finish.
    func probe() throws(InvariantViolation) {
        if probeIndex == nil {
            if let leader = currentLeader() {
                probeSequence += 1
                let command = KeyValueCommand(client: 0, sequence: probeSequence, key: 0, value: probeSequence)
                if (try? leader.node!.propose(command.encoded())) != nil { try drain(leader) }
            }
        } else if laggingMembers().isEmpty && clients.allSatisfy({ $0.operation == nil }) && clusterClients.allSatisfy({ $0.operation == nil }) {
            finished = true
            return
        }
        queue.schedule(.livenessProbe, at: now + Self.probeIntervalMs)
    }
}

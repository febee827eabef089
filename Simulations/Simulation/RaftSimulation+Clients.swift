import Raft

/// Clients: writes proposed at a member and acknowledged when that member
/// applies them; linearizable reads through ReadIndex, answered once the
/// member has applied the read's index (dissertation §6.4).
extension RaftSimulation {
    func startOperation(_ index: Int) {
        var client = clients[index]
        precondition(client.operation == nil, "client \(client.id) starts an operation while one is in flight")
        let sequence = client.nextSequence
        client.nextSequence += 1
        let isWrite = clientRandom.chance(plan.raft.writeProbability)
        let key = clientRandom.uniform(UInt64(1)...plan.raft.keys)
        var operation = SimulatedClient.InFlight(
            kind: isWrite ? .put : .get, key: key, value: isWrite ? (client.id << 40) | sequence : 0,
            sequence: sequence, invokeTime: now)
        operation.target = chooseTarget(hint: client.leaderHint, avoiding: 0)
        client.operation = operation
        clients[index] = client
        queue.schedule(.clientAttempt(client: index, attempt: 0), at: now + clientRandom.uniform(plan.network.baseDelayMs))
    }

    /// The hinted member if it is in the group, else a random member of it.
    func chooseTarget(hint: NodeID, avoiding: NodeID) -> NodeID {
        if hint != 0 && hint != avoiding, let hinted = member(hint), !hinted.isStopped { return hint }
        var candidates = committedConfiguration.members.filter { $0 != avoiding }
        if candidates.isEmpty { candidates = committedConfiguration.members }
        return clientRandom.pick(candidates)
    }

    func attemptOperation(_ index: Int, attempt: UInt64) throws(InvariantViolation) {
        guard let operation = clients[index].operation, operation.attempt == attempt else { return }
        guard let member = member(operation.target), member.isRunning else {
            // Connection refused: try elsewhere soon.
            retry(index, target: chooseTarget(hint: 0, avoiding: operation.target), afterMs: clientRandom.uniform(5...20))
            return
        }
        let client = clients[index]
        var refusal: RaftError?
        switch operation.kind {
        case .put:
            let command = KeyValueCommand(client: client.id, sequence: operation.sequence, key: operation.key, value: operation.value)
            do {
                _ = try member.node!.propose(command.encoded())
                member.waitingWrites.append((index, operation.sequence))
            } catch {
                refusal = error
            }
        case .get:
            let context = KeyValueCommand(client: client.id, sequence: operation.sequence, key: operation.key, value: attempt).encoded()
            do {
                try member.node!.readIndex(context: context)
                member.pendingReads.append(SimulatedMember.PendingRead(
                    client: index, sequence: operation.sequence, key: operation.key, context: context))
            } catch {
                refusal = error
            }
        }
        hasher.combine(0x434c_4e54)  // "CLNT"
        hasher.combine((UInt64(index) << 32) | operation.sequence)
        guard let refusal else {
            queue.schedule(.clientTimeout(client: index, attempt: attempt), at: now + plan.raft.attemptTimeoutMs)
            try drain(member)
            return
        }
        let next = redirect(after: refusal, from: member.id)
        clients[index].leaderHint = next.hint
        retry(index, target: next.target, afterMs: next.afterMs)
    }

    /// Where and when a call that `member` refused goes next, and the
    /// client's new leader hint: to the leader it named, soon, or else to
    /// another member after a back-off.
    func redirect(after refusal: RaftError, from member: NodeID) -> (hint: NodeID, target: NodeID, afterMs: UInt64) {
        if case .notLeader(let leader) = refusal, leader != 0 {
            return (leader, chooseTarget(hint: leader, avoiding: member), clientRandom.uniform(1...5))
        }
        return (0, chooseTarget(hint: 0, avoiding: member), clientRandom.uniform(10...40))
    }

    private func retry(_ index: Int, target: NodeID, afterMs delay: UInt64) {
        guard var operation = clients[index].operation else { return }
        if now >= operation.invokeTime + plan.raft.operationTimeoutMs {
            giveUp(index)
            return
        }
        operation.attempt += 1
        operation.target = target
        clients[index].operation = operation
        queue.schedule(.clientAttempt(client: index, attempt: operation.attempt), at: now + delay)
    }

    func timeOut(_ index: Int, attempt: UInt64) {
        guard let operation = clients[index].operation, operation.attempt == attempt else { return }
        clients[index].leaderHint = 0
        retry(index, target: chooseTarget(hint: 0, avoiding: operation.target), afterMs: clientRandom.uniform(0...5))
    }

    /// The client stops waiting: a write's outcome is now unknown (it may
    /// still take effect); a read had no effect and is forgotten.
    private func giveUp(_ index: Int) {
        guard let operation = clients[index].operation else { return }
        if operation.kind == .put {
            history.append(ClientOperation(
                client: clients[index].id, kind: .put, key: operation.key, value: operation.value,
                invokeTime: operation.invokeTime, returnTime: nil))
            statistics.operationsWithUnknownOutcome += 1
        }
        record("client \(clients[index].id) gives up on \(operation.kind.rawValue) \(operation.sequence)")
        clients[index].operation = nil
        scheduleNextOperation(index)
    }

    func complete(_ index: Int, sequence: UInt64, value: UInt64) {
        guard let operation = clients[index].operation, operation.sequence == sequence else { return }
        let client = clients[index]
        switch operation.kind {
        case .put:
            guard let appliedAt = writeIndex[(client.id << 32) | sequence] else {
                preconditionFailure("client \(client.id) write \(sequence) acknowledged but never applied")
            }
            raftInvariants.recordAcknowledgedWrite(client: client.id, sequence: sequence, index: appliedAt)
            statistics.writesAcknowledged += 1
        case .get:
            statistics.readsAnswered += 1
        }
        history.append(ClientOperation(
            client: client.id, kind: operation.kind, key: operation.key,
            value: operation.kind == .put ? operation.value : value, invokeTime: operation.invokeTime, returnTime: now))
        hasher.combine(0x4143_4b00)  // "ACK"
        hasher.combine((UInt64(index) << 32) | sequence)
        hasher.combine(value)
        if options.recordTrace {
            record("client \(client.id) \(operation.kind.rawValue)(k\(operation.key)) seq \(sequence) -> \(operation.kind == .put ? operation.value : value) after \(operation.attempt + 1) attempts")
        }
        clients[index].operation = nil
        scheduleNextOperation(index)
    }

    private func scheduleNextOperation(_ index: Int) {
        guard inFaultPhase else { return }
        queue.schedule(.clientStart(client: index), at: now + clientRandom.uniform(plan.raft.thinkTimeMs))
    }

    /// Acknowledges every waiting write this member's store now holds.
    func respondToWrites(on member: SimulatedMember) {
        guard !member.waitingWrites.isEmpty else { return }
        var still: [(client: Int, sequence: UInt64)] = []
        for waiting in member.waitingWrites {
            if member.store.hasApplied(client: clients[waiting.client].id, sequence: waiting.sequence) {
                queue.schedule(
                    .clientResponse(client: waiting.client, sequence: waiting.sequence, value: 0),
                    at: now + clientRandom.uniform(plan.network.baseDelayMs))
            } else {
                still.append(waiting)
            }
        }
        member.waitingWrites = still
    }

    /// Answers every read whose ReadState index this member has applied.
    func answerReads(on member: SimulatedMember) {
        guard !member.pendingReads.isEmpty else { return }
        var still: [SimulatedMember.PendingRead] = []
        for read in member.pendingReads {
            if let index = read.index, index <= member.appliedIndex {
                queue.schedule(
                    .clientResponse(client: read.client, sequence: read.sequence, value: member.store.value(of: read.key)),
                    at: now + clientRandom.uniform(plan.network.baseDelayMs))
            } else {
                still.append(read)
            }
        }
        member.pendingReads = still
    }
}

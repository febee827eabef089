import ClusterState
import Raft

/// `shoal-sim cluster`: members apply the committed log to ``ClusterState``
/// as managers do, and clients call the API — create a service, update it
/// with compare-and-set on the version they last saw, read it through
/// ReadIndex. A write is answered when the member that proposed it applies
/// its index, with what `apply` returned there (as ``ManagerRaft`` does).
extension RaftSimulation {
    static func serviceID(_ service: UInt64) -> ObjectID { ObjectID("service-\(service)")! }

    // MARK: Calls

    func startClusterOperation(_ index: Int) {
        var client = clusterClients[index]
        precondition(client.operation == nil, "client \(client.id) starts a call while one is in flight")
        let sequence = client.nextSequence
        client.nextSequence += 1
        let service = clientRandom.uniform(UInt64(1)...plan.raft.keys)
        let roll = clientRandom.unit()
        let kind: ClusterOperation.Kind
        if client.knownVersions[service] != nil {
            kind = roll < 0.6 ? .update : roll < 0.9 ? .read : .create
        } else {
            // Mostly read first, as a client that wants to update does.
            kind = roll < 0.7 ? .read : .create
        }
        let record = ClusterOperation(
            client: client.id, sequence: sequence, kind: kind, service: service,
            expectedVersion: kind == .update ? client.knownVersions[service]! : 0,
            image: kind == .read ? "" : "image-c\(client.id)-\(sequence)", invokeTime: now)
        clusterCalls[ClusterInvariants.key(client: client.id, sequence: sequence)] = record
        var operation = ClusterClient.InFlight(record: record)
        operation.target = chooseTarget(hint: client.leaderHint, avoiding: 0)
        client.operation = operation
        clusterClients[index] = client
        queue.schedule(.clusterClientAttempt(client: index, sequence: sequence, attempt: 0), at: now + clientRandom.uniform(plan.network.baseDelayMs))
    }

    func attemptClusterOperation(_ index: Int, sequence: UInt64, attempt: UInt64) throws(InvariantViolation) {
        guard let operation = clusterClients[index].operation, operation.record.sequence == sequence, operation.attempt == attempt else { return }
        guard let member = member(operation.target), member.isRunning else {
            // Connection refused: nothing was sent, try elsewhere soon.
            retryCluster(index, target: chooseTarget(hint: 0, avoiding: operation.target), afterMs: clientRandom.uniform(5...20))
            return
        }
        let call = operation.record
        let tag = ClusterEntry(client: call.client, sequence: call.sequence, attempt: attempt, proposal: [])
        var refusal: RaftError?
        do {
            if call.kind == .read {
                try member.node!.readIndex(context: tag.encoded())
                member.pendingClusterReads.append(SimulatedMember.PendingRead(
                    client: index, sequence: call.sequence, key: call.service, context: tag.encoded()))
            } else if !options.confirmRefusals, let refusal = leaderRefusal(of: call, on: member) {
                statistics.refusedBeforeProposing += 1
                queue.schedule(
                    .clusterClientResponse(client: index, sequence: call.sequence, outcome: .refused(refusal), witnessIndex: member.appliedIndex),
                    at: now + clientRandom.uniform(plan.network.baseDelayMs))
                return
            } else if leaderRefusal(of: call, on: member) != nil {
                // As ManagerRaft's `validate`: a refusal read from the state
                // waits for a ReadIndex round, then is checked again.
                try member.node!.readIndex(context: tag.encoded())
                var read = SimulatedMember.PendingRead(client: index, sequence: call.sequence, key: call.service, context: tag.encoded())
                read.confirmsRefusalOf = call
                read.attempt = attempt
                member.pendingClusterReads.append(read)
            } else {
                try propose(call, attempt: attempt, client: index, on: member)
            }
        } catch {
            refusal = error
        }
        hasher.combine(0x4353_4c54)  // "CSLT"
        hasher.combine((UInt64(index) << 32) | call.sequence)
        guard let refusal else {
            queue.schedule(.clusterClientTimeout(client: index, sequence: call.sequence, attempt: attempt), at: now + plan.raft.attemptTimeoutMs)
            try drain(member)
            return
        }
        let next = redirect(after: refusal, from: member.id)
        clusterClients[index].leaderHint = next.hint
        retryCluster(index, target: next.target, afterMs: next.afterMs)
    }

    private func propose(_ call: ClusterOperation, attempt: UInt64, client index: Int, on member: SimulatedMember) throws(RaftError) {
        let entry = ClusterEntry(
            client: call.client, sequence: call.sequence, attempt: attempt,
            proposal: ClusterProposal(timeMilliseconds: Int64(now), command: Self.command(for: call)).encoded())
        let appendedAt = try member.node!.propose(entry.encoded())
        record("client \(call.client) #\(call.sequence) attempt \(attempt) proposed at member \(member.id) index \(appendedAt)")
        member.waitingClusterWrites.append(.init(index: appendedAt, client: index, sequence: call.sequence, attempt: attempt))
    }

    /// What a leader refuses before proposing, as ``ManagerRaft`` does with
    /// `validate: true`: the command checked against its state, a version
    /// conflict counting as certain only when the state holds every entry
    /// the leader knows to be committed. `confirmed`: after a ReadIndex
    /// round, when the member's state is fresh whatever its role now.
    private func leaderRefusal(of call: ClusterOperation, on member: SimulatedMember, confirmed: Bool = false) -> String? {
        guard let node = member.node, confirmed || node.role == .leader else { return nil }
        do {
            try member.cluster.validate(Self.command(for: call), context: ApplyContext(index: member.cluster.appliedIndex + 1, timeMilliseconds: Int64(now)))
            return nil
        } catch {
            if case .versionConflict = error, member.cluster.appliedIndex < node.commitIndex { return nil }
            return Self.reason(error)
        }
    }

    static func command(for call: ClusterOperation) -> ClusterCommand {
        var spec = Service.Spec(name: "service-\(call.service)", task: TaskTemplate(image: call.image))
        spec.labels = ["writer": "c\(call.client)"]
        switch call.kind {
        case .create: return .createService(id: serviceID(call.service), spec: spec)
        case .update: return .updateService(id: serviceID(call.service), expectedVersion: call.expectedVersion, spec: spec, force: false)
        case .read: preconditionFailure("a read is not a command")
        }
    }

    /// Another attempt after a certain refusal (nothing of the last attempt
    /// can ever commit), unless the call is out of time.
    private func retryCluster(_ index: Int, target: NodeID, afterMs delay: UInt64) {
        guard var operation = clusterClients[index].operation else { return }
        if now >= operation.record.invokeTime + plan.raft.operationTimeoutMs {
            giveUpCluster(index)
            return
        }
        operation.attempt += 1
        operation.target = target
        clusterClients[index].operation = operation
        queue.schedule(.clusterClientAttempt(client: index, sequence: operation.record.sequence, attempt: operation.attempt), at: now + delay)
    }

    /// An attempt got no answer in time. A read is retried (it changed
    /// nothing); a write may yet commit, so the call ends with an unknown outcome.
    func timeOutCluster(_ index: Int, sequence: UInt64, attempt: UInt64) {
        guard let operation = clusterClients[index].operation, operation.record.sequence == sequence, operation.attempt == attempt else { return }
        clusterClients[index].leaderHint = 0
        if operation.record.kind == .read {
            retryCluster(index, target: chooseTarget(hint: 0, avoiding: operation.target), afterMs: clientRandom.uniform(0...5))
        } else {
            giveUpCluster(index)
        }
    }

    private func giveUpCluster(_ index: Int) {
        guard let operation = clusterClients[index].operation else { return }
        if operation.record.kind != .read {
            clusterHistory.append(operation.record)
            statistics.operationsWithUnknownOutcome += 1
        }
        record("client gives up: \(operation.record)")
        clusterClients[index].operation = nil
        clusterClients[index].knownVersions[operation.record.service] = nil
        scheduleNextClusterOperation(index)
    }

    func completeCluster(_ index: Int, sequence: UInt64, outcome: ClusterOperation.Outcome, witnessIndex: UInt64) {
        guard var operation = clusterClients[index].operation, operation.record.sequence == sequence else { return }
        operation.record.returnTime = now
        operation.record.outcome = outcome
        operation.record.witnessIndex = witnessIndex
        clusterHistory.append(operation.record)
        switch outcome {
        case .written(let version), .read(let version, _):
            clusterClients[index].knownVersions[operation.record.service] = version
        case .refused, .absent:
            clusterClients[index].knownVersions[operation.record.service] = nil
        }
        if operation.record.kind == .read {
            statistics.readsAnswered += 1
        } else {
            statistics.writesAcknowledged += 1
            if case .refused(let reason) = outcome, reason.hasPrefix("versionConflict") { statistics.versionConflicts += 1 }
        }
        hasher.combine(0x4341_434b)  // "CACK"
        hasher.combine((UInt64(index) << 32) | sequence)
        hasher.combine(witnessIndex)
        record("\(operation.record) after \(operation.attempt + 1) attempts")
        clusterClients[index].operation = nil
        scheduleNextClusterOperation(index)
    }

    private func scheduleNextClusterOperation(_ index: Int) {
        guard inFaultPhase else { return }
        queue.schedule(.clusterClientStart(client: index), at: now + clientRandom.uniform(plan.raft.thinkTimeMs))
    }

    // MARK: Members

    /// Applies a committed cluster entry to `member`'s ``ClusterState``,
    /// records its effect, and answers the write waiting for this index here.
    func applyCluster(_ entry: ClusterEntry, at index: UInt64, on member: SimulatedMember) throws(InvariantViolation) {
        let outcome: ClusterOperation.Outcome
        do {
            let proposal = try ClusterProposal(encoded: entry.proposal)
            try member.cluster.apply(proposal.command, context: ApplyContext(index: index, timeMilliseconds: proposal.timeMilliseconds))
            let call = clusterCalls[ClusterInvariants.key(client: entry.client, sequence: entry.sequence)]!
            outcome = .written(version: member.cluster.service(Self.serviceID(call.service))?.meta.version ?? 0)
        } catch {
            outcome = .refused(Self.reason(error))
        }
        var chained = TraceHasher()
        chained.combine(member.clusterDigest)
        chained.combine(index)
        chained.combine(Array("\(outcome)".utf8))
        member.clusterDigest = chained.value
        try clusterInvariants.recordEffect(
            .init(client: entry.client, sequence: entry.sequence, attempt: entry.attempt, outcome: outcome), at: index, time: now)

        var still: [SimulatedMember.WaitingClusterWrite] = []
        for waiting in member.waitingClusterWrites {
            guard waiting.index == index else {
                still.append(waiting)
                continue
            }
            let call = clusterClients[waiting.client].id
            if call == entry.client && waiting.sequence == entry.sequence && waiting.attempt == entry.attempt {
                queue.schedule(
                    .clusterClientResponse(client: waiting.client, sequence: waiting.sequence, outcome: outcome, witnessIndex: index),
                    at: now + clientRandom.uniform(plan.network.baseDelayMs))
            } else {
                // Another entry took the index: this attempt can never commit.
                abandonClusterWrite(waiting)
            }
        }
        member.waitingClusterWrites = still
    }

    /// A no-op, configuration or key-value entry took an index a cluster write waited for.
    func abandonClusterWrites(at index: UInt64, on member: SimulatedMember) {
        guard member.waitingClusterWrites.contains(where: { $0.index == index }) else { return }
        for waiting in member.waitingClusterWrites where waiting.index == index { abandonClusterWrite(waiting) }
        member.waitingClusterWrites.removeAll { $0.index == index }
    }

    private func abandonClusterWrite(_ waiting: SimulatedMember.WaitingClusterWrite) {
        guard let operation = clusterClients[waiting.client].operation,
            operation.record.sequence == waiting.sequence, operation.attempt == waiting.attempt
        else { return }
        retryCluster(waiting.client, target: chooseTarget(hint: 0, avoiding: 0), afterMs: clientRandom.uniform(1...10))
    }

    /// Answers every cluster read whose ReadState index this member has applied.
    func answerClusterReads(on member: SimulatedMember) {
        guard !member.pendingClusterReads.isEmpty else { return }
        var still: [SimulatedMember.PendingRead] = []
        for read in member.pendingClusterReads {
            guard let index = read.index, index <= member.appliedIndex else {
                still.append(read)
                continue
            }
            if let call = read.confirmsRefusalOf {
                confirmRefusal(of: call, attempt: read.attempt, client: read.client, on: member)
                continue
            }
            let outcome: ClusterOperation.Outcome
            if let service = member.cluster.service(Self.serviceID(read.key)) {
                outcome = .read(version: service.meta.version, image: service.spec.task.image)
            } else {
                outcome = .absent
            }
            queue.schedule(
                .clusterClientResponse(client: read.client, sequence: read.sequence, outcome: outcome, witnessIndex: member.appliedIndex),
                at: now + clientRandom.uniform(plan.network.baseDelayMs))
        }
        member.pendingClusterReads = still
    }

    /// The ReadIndex round behind a refusal completed: refuse for good if the
    /// state still refuses, else propose after all.
    private func confirmRefusal(of call: ClusterOperation, attempt: UInt64, client index: Int, on member: SimulatedMember) {
        guard let operation = clusterClients[index].operation, operation.record.sequence == call.sequence, operation.attempt == attempt else { return }
        if let refusal = leaderRefusal(of: call, on: member, confirmed: true) {
            statistics.refusedBeforeProposing += 1
            hasher.combine(0x5245_4655)  // "REFU"
            queue.schedule(
                .clusterClientResponse(client: index, sequence: call.sequence, outcome: .refused(refusal), witnessIndex: member.appliedIndex),
                at: now + clientRandom.uniform(plan.network.baseDelayMs))
            return
        }
        do {
            try propose(call, attempt: attempt, client: index, on: member)
        } catch {
            // No longer the leader: nothing was proposed, so the client may retry elsewhere.
            retryCluster(index, target: chooseTarget(hint: 0, avoiding: member.id), afterMs: clientRandom.uniform(1...10))
        }
    }

    static func reason(_ error: Error) -> String {
        guard let error = error as? ClusterStateError else { return "\(error)" }
        switch error {
        case .notFound: return "notFound"
        case .alreadyExists: return "alreadyExists"
        case .nameInUse: return "nameInUse"
        // The API says which version the object is at now: part of what the client observed.
        case .versionConflict(_, _, _, let actual): return "versionConflict(now \(actual))"
        case .invalidSpec(let field, _): return "invalidSpec(\(field))"
        case .invalidTransition: return "invalidTransition"
        case .inUse: return "inUse"
        case .undecodableCommand: return "undecodable"
        }
    }

    // MARK: Snapshots

    /// A member's replicated state as snapshot bytes: the key-value store
    /// alone for `shoal-sim raft`; for `cluster`, the store's length and
    /// bytes, the chained digest, then the ``ClusterState`` snapshot.
    func replicaSnapshot(of member: SimulatedMember) -> [UInt8] {
        let store = member.store.serialized()
        guard options.workload == .cluster else { return store }
        var bytes: [UInt8] = []
        for word in [UInt64(store.count)] { for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) } }
        bytes += store
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: member.clusterDigest >> UInt64(shift))) }
        return bytes + member.cluster.snapshot()
    }

    /// Restores ``replicaSnapshot(of:)``; false when the bytes are not one.
    func restoreReplica(_ member: SimulatedMember, from bytes: [UInt8]) -> Bool {
        guard options.workload == .cluster else {
            guard let store = KeyValueStore(serialized: bytes) else { return false }
            member.store = store
            return true
        }
        func word(at offset: Int) -> UInt64? {
            guard offset + 8 <= bytes.count else { return nil }
            var value: UInt64 = 0
            for byte in 0..<8 { value |= UInt64(bytes[offset + byte]) << UInt64(byte * 8) }
            return value
        }
        guard let storeBytes = word(at: 0).map(Int.init), storeBytes <= bytes.count - 8,
            let store = KeyValueStore(serialized: Array(bytes[8..<(8 + storeBytes)])),
            let digest = word(at: 8 + storeBytes)
        else { return false }
        let clusterBytes = Array(bytes[(16 + storeBytes)...])
        guard let cluster = try? ClusterState(snapshot: clusterBytes) else { return false }
        member.store = store
        member.clusterDigest = digest
        member.cluster = cluster
        return true
    }

    /// The digest ``RaftInvariants/stateMachineSafety`` compares after each entry.
    func stateDigest(of member: SimulatedMember) -> UInt64 {
        let store = TraceHasher.digest(member.store.serialized())
        guard options.workload == .cluster else { return store }
        var hasher = TraceHasher()
        hasher.combine(store)
        hasher.combine(member.clusterDigest)
        return hasher.value
    }

    /// Compares `member`'s cluster snapshot at its applied index with every
    /// other member's at that index, and checks that it restores exactly.
    func checkClusterSnapshot(of member: SimulatedMember) throws(InvariantViolation) {
        guard options.workload == .cluster else { return }
        let snapshot = member.cluster.snapshot()
        let restored = try? ClusterState(snapshot: snapshot)
        try clusterInvariants.equalSnapshots(
            member: member.id, index: member.appliedIndex, snapshot: snapshot, restoresEqual: restored == member.cluster, time: now)
    }

    func checkClusterWrites(on member: SimulatedMember) throws(InvariantViolation) {
        guard options.workload == .cluster else { return }
        let cluster = member.cluster
        try clusterInvariants.noAcknowledgedWriteLost(
            member: member.id, appliedIndex: member.appliedIndex, history: clusterHistory,
            version: { cluster.service(Self.serviceID($0))?.meta.version }, time: now)
    }

    /// At the end: the calls left in flight have unknown outcomes; then the
    /// API-level invariants over the whole history.
    func finalClusterChecks() throws(InvariantViolation) {
        for client in clusterClients {
            if let operation = client.operation, operation.record.kind != .read {
                clusterHistory.append(operation.record)
                statistics.operationsWithUnknownOutcome += 1
            }
        }
        for member in members where member.isRunning { try checkClusterSnapshot(of: member) }
        try clusterInvariants.noLostUpdate(calls: clusterCalls, time: now)
        try clusterInvariants.linearizableClusterHistory(clusterHistory, calls: clusterCalls, time: now)
        record("passed: \(clusterHistory.count) cluster calls linearizable, no update lost")
    }
}

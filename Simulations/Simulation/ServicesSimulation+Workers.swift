import ClusterState
import Raft

/// The workers of `shoal-sim services`: the agent's session loop and task
/// handling (as Sources/Agent/Agent.swift) over a fake runtime.
extension ServicesSimulation {
    // MARK: Session

    /// Opens a session on the leader it was told of, else on any manager.
    func connect(_ worker: SimulatedWorker, epoch: UInt64) {
        guard worker.isAlive, worker.epoch == epoch, worker.sessionManager == nil else { return }
        let hint = worker.leaderHint
        worker.target = hint != 0 && hint != worker.target ? hint : NodeID(workerRandom.uniform(1...UInt64(options.members)))
        let sequence = worker.takeSequence()
        worker.heartbeatInFlight = sequence
        callManager(worker, .openSession(epoch: epoch, sequence: sequence))
    }

    func callManager(_ worker: SimulatedWorker, _ call: WorkerCall) {
        let arrival = max(now + networkRandom.uniform(plan.network.baseDelayMs), worker.lastArrivalAtManager)
        worker.lastArrivalAtManager = arrival
        queue.schedule(.workerCall(worker: worker.index, manager: worker.target, call: call), at: arrival)
        queue.schedule(.workerCallTimeout(worker: worker.index, epoch: call.epoch, sequence: call.sequence), at: now + Self.callTimeoutMs)
    }

    /// The session failed: start another (the agent's reconnect with backoff).
    func reconnect(_ worker: SimulatedWorker, leaderHint: NodeID) {
        worker.epoch += 1
        worker.sessionManager = nil
        worker.heartbeatInFlight = nil
        worker.statusInFlight = nil
        worker.leaderHint = leaderHint
        statistics.sessionsLost += 1
        queue.schedule(.workerConnect(worker: worker.index, epoch: worker.epoch), at: now + workerRandom.uniform(Self.reconnectBackoffMs))
    }

    func sendHeartbeat(_ worker: SimulatedWorker, epoch: UInt64) {
        guard worker.isAlive, worker.epoch == epoch, worker.sessionManager != nil else { return }
        queue.schedule(.workerHeartbeat(worker: worker.index, epoch: epoch), at: now + UInt64(Self.heartbeatPeriodMs))
        guard worker.heartbeatInFlight == nil else { return }
        let sequence = worker.takeSequence()
        worker.heartbeatInFlight = sequence
        callManager(worker, .heartbeat(epoch: epoch, sequence: sequence))
    }

    func callTimedOut(_ worker: SimulatedWorker, epoch: UInt64, sequence: UInt64) {
        guard worker.isAlive, worker.epoch == epoch else { return }
        if worker.heartbeatInFlight == sequence || worker.statusInFlight?.sequence == sequence {
            record("worker \(worker.index): call \(sequence) to manager \(worker.target) timed out")
            reconnect(worker, leaderHint: 0)
        }
    }

    /// Sends the observed statuses not yet acknowledged, one batch at a time.
    func flush(_ worker: SimulatedWorker, epoch: UInt64) {
        guard worker.isAlive, worker.epoch == epoch, worker.sessionManager != nil else { return }
        queue.schedule(.workerFlush(worker: worker.index, epoch: epoch), at: now + Self.statusFlushMs)
        guard worker.statusInFlight == nil, !worker.pendingReports.isEmpty else { return }
        let reports = worker.pendingReports.keys.sorted().map { (taskID: $0, status: worker.pendingReports[$0]!) }
        let sequence = worker.takeSequence()
        worker.statusInFlight = (sequence, worker.pendingReports)
        callManager(worker, .status(epoch: epoch, sequence: sequence, reports: reports))
    }

    func workerReceives(_ message: WorkerMessage, worker: SimulatedWorker) throws(InvariantViolation) {
        guard worker.isAlive else { return }
        switch message {
        case .answered(let epoch, let sequence):
            guard epoch == worker.epoch else { return }
            if worker.heartbeatInFlight == sequence {
                worker.heartbeatInFlight = nil
                if worker.sessionManager == nil {
                    // The session is open: heartbeats and status batches start.
                    worker.sessionManager = worker.target
                    worker.leaderHint = 0
                    statistics.sessionsOpened += 1
                    queue.schedule(.workerHeartbeat(worker: worker.index, epoch: epoch), at: now + UInt64(Self.heartbeatPeriodMs))
                    queue.schedule(.workerFlush(worker: worker.index, epoch: epoch), at: now + workerRandom.uniform(1...Self.statusFlushMs))
                }
            } else if let inFlight = worker.statusInFlight, inFlight.sequence == sequence {
                worker.statusInFlight = nil
                for (taskID, status) in inFlight.reports where worker.pendingReports[taskID] == status {
                    worker.pendingReports[taskID] = nil
                }
            }
        case .refused(let epoch, let sequence, let hint):
            guard epoch == worker.epoch, worker.heartbeatInFlight == sequence || worker.statusInFlight?.sequence == sequence else { return }
            reconnect(worker, leaderHint: hint)
        case .assignments(let epoch, let full, let tasks, let removed):
            guard epoch == worker.epoch else { return }
            var gone = removed
            if full {
                let listed = Set(tasks.map(\.id))
                gone += worker.records.keys.filter { !listed.contains($0) }
            }
            for id in Set(gone).sorted() { remove(id, on: worker) }
            for task in tasks { update(task, on: worker) }
        }
    }

    // MARK: Tasks (Agent.update, in its order)

    private func update(_ task: ServiceTask, on worker: SimulatedWorker) {
        var record = worker.records[task.id] ?? SimulatedWorker.Record(task: task, observed: task.status)
        record.task = task
        if task.status.state > record.observed.state { record.observed = task.status }
        worker.records[task.id] = record
        if task.desiredState > .running {
            if record.observed.state.isTerminal || record.stopping { return }
            worker.records[task.id]!.stopping = true
            switch record.container {
            case .running:
                worker.records[task.id]!.container = .stopping
                queue.schedule(.containerStopped(worker: worker.index, taskID: task.id, incarnation: record.incarnation),
                               at: now + workerRandom.uniform(plan.services.stopLatencyMs))
            case .starting, .stopping:
                break  // the start sees `stopping`; the stop reports
            case .none:
                report(task.id, .shutdown, on: worker, message: "shut down before it started")
            }
            return
        }
        if record.container != .none || record.observed.state.isTerminal || record.observed.state < .assigned { return }
        if record.observed.state <= .accepted {
            worker.records[task.id]!.container = .starting
            worker.records[task.id]!.incarnation += 1
            report(task.id, .preparing, on: worker, message: "preparing image \(task.template.image)")
            queue.schedule(.containerStarted(worker: worker.index, taskID: task.id, incarnation: record.incarnation + 1),
                           at: now + workerRandom.uniform(plan.services.startLatencyMs))
        } else {
            // The manager saw it further along, but this worker runs no such container (it restarted).
            report(task.id, .failed, on: worker, message: "lost", error: "the task's container is gone (the node restarted)")
        }
    }

    /// The task left this node's list: its container goes at once.
    private func remove(_ taskID: ObjectID, on worker: SimulatedWorker) {
        guard let record = worker.records.removeValue(forKey: taskID) else { return }
        if record.container == .running || record.container == .stopping { invariants.containerGone(record.task) }
        worker.pendingReports[taskID] = nil
    }

    private func report(_ taskID: ObjectID, _ state: ServiceTask.State, on worker: SimulatedWorker, message: String = "", error: String = "",
                        exitCode: Int32? = nil) {
        guard var record = worker.records[taskID] else { return }
        if state < record.observed.state || (record.observed.state.isTerminal && state != record.observed.state) { return }
        let status = ServiceTask.Status(state: state, timestampMilliseconds: Int64(now), message: message, error: error, exitCode: exitCode,
                                        containerID: "task-" + taskID.rawValue)
        record.observed = status
        worker.records[taskID] = record
        worker.pendingReports[taskID] = status
    }

    // MARK: The fake runtime

    func containerStarted(_ worker: SimulatedWorker, taskID: ObjectID, incarnation: UInt64) throws(InvariantViolation) {
        guard worker.isAlive, var record = worker.records[taskID], record.incarnation == incarnation, record.container == .starting else { return }
        if record.stopping || record.task.desiredState > .running {
            worker.records[taskID]!.container = .none
            report(taskID, .shutdown, on: worker, message: "shut down before it started")
            return
        }
        let state = (currentLeader() ?? members.first { $0.isRunning })?.cluster
        let excused = try invariants.noSlotRunningOnTwoNodes(starting: record.task, on: worker.nodeID,
                                                             isDown: { state?.node($0)?.status.state == .down }, time: now)
        if excused {
            statistics.slotsRestartedBesideDownNodes += 1
            self.record("task \(taskID) starts on \(worker.nodeID) while its slot still runs on a node marked down")
        }
        try invariants.placementSatisfiesConstraints(record.task, on: state?.node(worker.nodeID), nodeID: worker.nodeID, time: now)
        record.container = .running
        worker.records[taskID] = record
        statistics.containersStarted += 1
        hasher.combine(0x5354_5254)  // "STRT"
        hasher.combine(UInt64(worker.index))
        report(taskID, .running, on: worker, message: "started")
        if workload.isJob(record.task.serviceID) {
            queue.schedule(.containerExited(worker: worker.index, taskID: taskID, incarnation: incarnation, exitCode: 0),
                           at: now + workerRandom.uniform(plan.services.jobDurationMs))
        } else if inFaultPhase && workerRandom.chance(plan.services.crashProbability) {
            queue.schedule(.containerExited(worker: worker.index, taskID: taskID, incarnation: incarnation, exitCode: 137),
                           at: now + workerRandom.uniform(plan.services.crashAfterMs))
        }
    }

    func containerExited(_ worker: SimulatedWorker, taskID: ObjectID, incarnation: UInt64, exitCode: Int32) {
        guard worker.isAlive, let record = worker.records[taskID], record.incarnation == incarnation,
              record.container == .running || record.container == .stopping
        else { return }
        worker.records[taskID]!.container = .none
        invariants.containerGone(record.task)
        if record.container == .stopping || record.stopping {
            report(taskID, .shutdown, on: worker, message: "stopped", exitCode: exitCode)
        } else if exitCode == 0 {
            report(taskID, .complete, on: worker, message: "finished (exit code 0)", exitCode: 0)
        } else {
            statistics.containersCrashed += 1
            report(taskID, .failed, on: worker, message: "exited", error: "task exited with code \(exitCode)", exitCode: exitCode)
        }
    }

    func containerStopped(_ worker: SimulatedWorker, taskID: ObjectID, incarnation: UInt64) {
        guard worker.isAlive, let record = worker.records[taskID], record.incarnation == incarnation, record.container == .stopping else { return }
        worker.records[taskID]!.container = .none
        invariants.containerGone(record.task)
        report(taskID, .shutdown, on: worker, message: "stopped", exitCode: 143)
    }

    // MARK: Deaths

    /// The host dies: its containers with it; its records file survives.
    func kill(_ worker: SimulatedWorker) {
        guard worker.isAlive else { return }
        worker.isAlive = false
        for id in worker.records.keys.sorted() {
            let record = worker.records[id]!
            if record.container == .running || record.container == .stopping { invariants.containerGone(record.task) }
            worker.records[id]!.container = .none
            worker.records[id]!.stopping = false
        }
        worker.epoch += 1
        worker.sessionManager = nil
        worker.heartbeatInFlight = nil
        worker.statusInFlight = nil
        worker.lastArrivalAtManager = now
        worker.lastArrivalAtWorker = now
        statistics.workersKilled += 1
        hasher.combine(0x4b49_4c4c)  // "KILL"
        hasher.combine(UInt64(worker.index))
        record("worker \(worker.index) died")
        if inFaultPhase { queue.schedule(.workerRestart(worker: worker.index), at: now + nemesisRandom.uniform(plan.services.workerDowntimeMs)) }
    }

    func restartWorker(_ worker: SimulatedWorker) {
        guard !worker.isAlive else { return }
        worker.isAlive = true
        worker.epoch += 1
        record("worker \(worker.index) restarted")
        queue.schedule(.workerConnect(worker: worker.index, epoch: worker.epoch), at: now + workerRandom.uniform(Self.reconnectBackoffMs))
    }
}

import ClusterState
import Foundation
import Raft

/// The Raft shell of a manager: owns one ``RaftNode``, its storage and the
/// ``ClusterState`` it applies, on a dedicated thread (fsync blocks, so it
/// stays off Swift's cooperative pool).
///
/// Everything else talks to it through thread-safe calls: messages from peers
/// (``receive(_:)``), writes (``propose(_:timeMilliseconds:)``), reads
/// (``read(linearizable:_:)``), membership changes. The thread carries out
/// each Ready in Raft's order — send the leader's traffic, persist, send the
/// rest, apply, advance — then answers the callers whose work is done.
public final class ManagerRaft: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var raft: RaftOptions
        /// Real time per Raft tick; election timeouts are counted in ticks.
        public var tickInterval: Duration = .milliseconds(100)
        /// Take a snapshot and compact the log every this many applied entries.
        public var snapshotEveryEntries: UInt64 = 10_000
        /// Recent changes kept for watchers resuming from an index.
        public var changeLogCapacity = 10_000
        /// How long a write or a linearizable read may wait for Raft before it
        /// fails with ``ManagerError/timedOut(operation:)``.
        public var requestTimeout: Duration = .seconds(10)

        public init(raft: RaftOptions) {
            self.raft = raft
        }
    }

    /// A snapshot of the member's Raft view, for `shoal cluster inspect`.
    public struct Status: Sendable, Equatable {
        public var id: NodeID
        public var role: Role
        public var leader: NodeID
        public var term: UInt64
        public var commitIndex: UInt64
        public var appliedIndex: UInt64
        public var snapshotIndex: UInt64
        public var configuration: Raft.Configuration
    }

    private let configuration: Configuration
    private let storage: RaftStorage
    private let transport: PeerTransport

    // Shared between callers and the loop thread, under `condition`.
    private let condition = NSCondition()
    private var inbox: [Message] = []
    private var proposalQueue: [PendingProposal] = []
    private var configurationChangeQueue: [(change: ConfigurationChange, deadline: UInt64, continuation: CheckedContinuation<Void, Error>)] = []
    private var readQueue: [PendingRead] = []
    private var transferQueue: [NodeID] = []
    private var stopping = false
    private var stopped = false
    private var publishedStatus: Status
    private var watchers: [UUID: Watcher] = [:]
    /// Snapshots serialized off the loop thread, waiting to compact the log.
    private var builtSnapshots: [(index: UInt64, data: [UInt8])] = []
    private var changeLog: ChangeLog
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    // Owned by the loop thread.
    private var node: RaftNode
    private var state: ClusterState
    private var awaitingCommit: [UInt64: (term: UInt64, deadline: UInt64, continuation: CheckedContinuation<[ClusterEvent], Error>)] = [:]
    private var awaitingConfigurationCommit: [UInt64: (term: UInt64, deadline: UInt64, continuation: CheckedContinuation<Void, Error>)] = [:]
    private var awaitingReadIndex: [UInt64: PendingRead] = [:]
    private var awaitingApply: [(index: UInt64, read: PendingRead)] = []
    private var nextReadID: UInt64 = 1
    private var failure: ManagerError?
    /// A snapshot is being serialized off this thread (see ``compactIfDue()``).
    private var snapshotInProgress = false

    private struct PendingProposal: Sendable {
        var data: [UInt8]
        /// The command and context to check before proposing (`validate: true`).
        var validating: (ClusterCommand, ApplyContext)?
        /// A refusal found now is final: a ReadIndex round since the call
        /// confirmed that this member's state holds every write acknowledged
        /// before it (see ``ManagerRaft/refusal(of:_:)``).
        var confirmed = false
        var deadline: UInt64
        var continuation: CheckedContinuation<[ClusterEvent], Error>
    }

    private struct Watcher {
        var continuation: AsyncStream<ClusterEvent>.Continuation
        /// Nil: every event.
        var filter: (@Sendable (ClusterEvent) -> Bool)?
    }

    private struct PendingRead {
        var linearizable: Bool
        var deadline: UInt64
        /// Term and leader when the ReadIndex request was made.
        var issuedUnder: (term: UInt64, leader: NodeID)?
        var body: @Sendable (ClusterState) -> Void
        var fail: @Sendable (ManagerError) -> Void
    }

    /// Loads what `storage` holds; with nothing stored, `bootstrapVoters`
    /// founds a new group (the first manager passes itself), and nil waits to
    /// be added to an existing one.
    public init(configuration: Configuration, storage: RaftStorage, transport: PeerTransport, bootstrapVoters: [NodeID]?) throws {
        self.configuration = configuration
        self.storage = storage
        self.transport = transport
        let persisted = try storage.load()
        if persisted == .empty, let voters = bootstrapVoters {
            node = RaftNode.bootstrap(options: configuration.raft, voters: voters)
        } else {
            node = try RaftNode(options: configuration.raft, restoring: persisted)
        }
        if let snapshot = persisted.snapshot, !snapshot.data.isEmpty {
            state = try ClusterState(snapshot: snapshot.data)
        } else {
            state = ClusterState()
        }
        changeLog = ChangeLog(capacity: configuration.changeLogCapacity)
        publishedStatus = Status(
            id: configuration.raft.id, role: node.role, leader: node.leader, term: node.term,
            commitIndex: node.commitIndex, appliedIndex: node.appliedIndex,
            snapshotIndex: node.snapshotMetadata?.index ?? 0, configuration: node.configuration)
    }

    // MARK: Lifecycle

    public func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "shoal-raft-\(configuration.raft.id)"
        thread.stackSize = 4 << 20
        self.thread = thread
        thread.start()
    }

    /// Stops the loop; pending callers get ``ManagerError/stopped``.
    public func stop() {
        condition.lock()
        let wasRunning = thread != nil && !stopping
        stopping = true
        condition.signal()
        condition.unlock()
        if wasRunning { finished.wait() }
        // The Thread keeps its block, which holds this object: without this,
        // a stopped member (and its log's database) would never be released.
        condition.lock()
        thread = nil
        condition.unlock()
    }

    // MARK: Inputs (any thread)

    /// A message from a peer.
    public func receive(_ message: Message) {
        condition.lock()
        inbox.append(message)
        condition.signal()
        condition.unlock()
    }

    /// A batch of messages from a peer, in order, with one wake-up.
    public func receive(_ messages: [Message]) {
        guard !messages.isEmpty else { return }
        condition.lock()
        inbox.append(contentsOf: messages)
        condition.signal()
        condition.unlock()
    }

    /// Proposes `command` and waits until it is committed and applied here.
    /// Returns the changes it made, or throws what refused it.
    ///
    /// With `validate`, the loop first checks `command` against this member's
    /// state (``ClusterState/validate(_:context:)``) and refuses it with
    /// ``ManagerError/rejected(_:)`` instead of writing to the log what apply
    /// would refuse — in the same trip to the loop thread as the proposal. A
    /// version conflict is only certain when the state holds every committed
    /// entry; otherwise the command is proposed and apply decides.
    /// `timeout` replaces ``Configuration/requestTimeout`` for this write.
    public func propose(_ command: ClusterCommand, timeMilliseconds: Int64, validate: Bool = false, timeout: Duration? = nil) async throws -> [ClusterEvent] {
        let data = ClusterProposal(timeMilliseconds: timeMilliseconds, command: command).encoded()
        let validating = validate ? (command, ApplyContext(index: 0, timeMilliseconds: timeMilliseconds)) : nil
        return try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            if stopping {
                condition.unlock()
                continuation.resume(throwing: ManagerError.stopped)
                return
            }
            proposalQueue.append(PendingProposal(
                data: data, validating: validating, deadline: deadline(after: timeout ?? configuration.requestTimeout), continuation: continuation))
            condition.signal()
            condition.unlock()
        }
    }

    /// Runs `body` on the state. Linearizable by default (ReadIndex, §6.4):
    /// the state reflects every write acknowledged before the call. With
    /// `linearizable: false` it reads this member's state as it is, which may
    /// be stale (for example without a quorum).
    public func read<T: Sendable>(linearizable: Bool = true, _ body: @escaping @Sendable (ClusterState) -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let once = ResumeOnce(continuation)
            let read = PendingRead(
                linearizable: linearizable, deadline: deadline(after: configuration.requestTimeout),
                body: { state in once.resume(returning: body(state)) },
                fail: { error in once.resume(throwing: error) })
            condition.lock()
            if stopping {
                condition.unlock()
                read.fail(.stopped)
                return
            }
            readQueue.append(read)
            condition.signal()
            condition.unlock()
        }
    }

    /// Adds, promotes or removes a Raft member and waits until the change commits.
    public func changeMembership(_ change: ConfigurationChange) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            condition.lock()
            if stopping {
                condition.unlock()
                continuation.resume(throwing: ManagerError.stopped)
                return
            }
            configurationChangeQueue.append((change, deadline(after: configuration.requestTimeout), continuation))
            condition.signal()
            condition.unlock()
        }
    }

    public func transferLeadership(to target: NodeID) {
        condition.lock()
        transferQueue.append(target)
        condition.signal()
        condition.unlock()
    }

    public var status: Status {
        condition.lock()
        defer { condition.unlock() }
        return publishedStatus
    }

    /// Changes applied from now on (after `index`, if given and still in the change log).
    ///
    /// With `filter`, only the events it accepts: a watcher that cares about
    /// a few kinds of object is then not woken by every write (the filter
    /// runs on the Raft loop's thread, so it must be cheap and not block).
    public func watch(after index: UInt64? = nil, filter: (@Sendable (ClusterEvent) -> Bool)? = nil) -> AsyncStream<ClusterEvent> {
        let (stream, continuation) = AsyncStream<ClusterEvent>.makeStream(bufferingPolicy: .bufferingNewest(configuration.changeLogCapacity))
        let id = UUID()
        condition.lock()
        if let index {
            if let backlog = changeLog.events(after: index) {
                for event in backlog where filter?(event) ?? true { continuation.yield(event) }
            } else {
                continuation.finish()
                condition.unlock()
                return stream
            }
        }
        watchers[id] = Watcher(continuation: continuation, filter: filter)
        condition.unlock()
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            self.condition.lock()
            self.watchers[id] = nil
            self.condition.unlock()
        }
        return stream
    }

    // MARK: The loop (its own thread)

    private func run() {
        let tickNanoseconds = UInt64(configuration.tickInterval.components.seconds) * 1_000_000_000
            + UInt64(configuration.tickInterval.components.attoseconds / 1_000_000_000)
        var nextTick = DispatchTime.now().uptimeNanoseconds + tickNanoseconds
        while true {
            condition.lock()
            while inbox.isEmpty && proposalQueue.isEmpty && readQueue.isEmpty && configurationChangeQueue.isEmpty
                    && transferQueue.isEmpty && builtSnapshots.isEmpty && !stopping && !node.hasReady
                    && DispatchTime.now().uptimeNanoseconds < nextTick {
                let waitNanoseconds = nextTick - min(nextTick, DispatchTime.now().uptimeNanoseconds)
                _ = condition.wait(until: Date(timeIntervalSinceNow: Double(waitNanoseconds) / 1e9))
            }
            if stopping {
                condition.unlock()
                shutDown()
                return
            }
            let messages = inbox
            let proposals = proposalQueue
            let reads = readQueue
            let changes = configurationChangeQueue
            let transfers = transferQueue
            let snapshots = builtSnapshots
            builtSnapshots.removeAll()
            inbox.removeAll(keepingCapacity: true)
            proposalQueue.removeAll(keepingCapacity: true)
            readQueue.removeAll(keepingCapacity: true)
            configurationChangeQueue.removeAll()
            transferQueue.removeAll()
            condition.unlock()

            if failure != nil {
                for proposal in proposals { proposal.continuation.resume(throwing: failure!) }
                for read in reads { read.fail(failure!) }
                for change in changes { change.continuation.resume(throwing: failure!) }
                continue
            }
            let now = DispatchTime.now().uptimeNanoseconds
            if now >= nextTick {
                node.tick()
                nextTick = max(nextTick + tickNanoseconds, now)
            }
            for message in messages { node.step(message) }
            for proposal in proposals {
                if let (command, context) = proposal.validating, let refusal = refusal(of: command, context) {
                    if proposal.confirmed || !Self.dependsOnState(refusal) {
                        proposal.continuation.resume(throwing: ManagerError.rejected(refusal))
                    } else {
                        confirmThenRetry(proposal)
                    }
                    continue
                }
                do {
                    let index = try node.propose(proposal.data)
                    awaitingCommit[index] = (node.term, proposal.deadline, proposal.continuation)
                } catch {
                    proposal.continuation.resume(throwing: ManagerError.raft(error))
                }
            }
            for change in changes {
                do {
                    let index = try node.proposeConfChange(change.change)
                    awaitingConfigurationCommit[index] = (node.term, change.deadline, change.continuation)
                } catch {
                    change.continuation.resume(throwing: ManagerError.raft(error))
                }
            }
            for target in transfers { try? node.transferLeadership(to: target) }
            for read in reads { startRead(read) }
            do {
                for snapshot in snapshots { try compact(through: snapshot.index, data: snapshot.data) }
                while node.hasReady { try handleReady() }
            } catch {
                failure = .storageFailed("\(error)")
                failEverything(with: failure!)
            }
            expireOverdueRequests()
            publishStatus()
        }
    }

    /// What apply would certainly refuse `command` with, checked on the
    /// current state (see ``propose(_:timeMilliseconds:validate:)``).
    private func refusal(of command: ClusterCommand, _ context: ApplyContext) -> ClusterStateError? {
        var context = context
        context.index = state.appliedIndex + 1
        do {
            try state.validate(command, context: context)
            return nil
        } catch {
            if case .versionConflict = error, state.appliedIndex < node.commitIndex { return nil }
            return error
        }
    }

    /// Whether a refusal comes from the state (an object missing, taken,
    /// at another version) rather than from the command alone.
    static func dependsOnState(_ refusal: ClusterStateError) -> Bool {
        switch refusal {
        case .invalidSpec, .undecodableCommand: return false
        case .notFound, .alreadyExists, .nameInUse, .versionConflict, .invalidTransition, .inUse: return true
        }
    }

    /// A refusal read from this member's state is a read, and must be as
    /// linearizable as one: a leader that was deposed without knowing it
    /// (partitioned) has a stale state, and would refuse a client's update
    /// of a version the client just read from the new leader, or say that
    /// an object the client just created does not exist (`shoal-sim
    /// cluster` found both). So the refusal waits for a ReadIndex round,
    /// then the command is checked again on the state that round
    /// guarantees: refused for good, or proposed.
    private func confirmThenRetry(_ proposal: PendingProposal) {
        var retried = proposal
        retried.confirmed = true
        let confirmed = retried
        startRead(PendingRead(
            linearizable: true, deadline: proposal.deadline,
            body: { [self] _ in
                condition.lock()
                proposalQueue.append(confirmed)
                condition.signal()
                condition.unlock()
            },
            fail: { error in
                // Leadership moved while confirming: the caller retries on the new leader.
                switch error {
                case .readInterrupted: proposal.continuation.resume(throwing: ManagerError.raft(.notLeader(leader: 0)))
                case .timedOut: proposal.continuation.resume(throwing: ManagerError.timedOut(operation: "confirming the refusal of a write"))
                default: proposal.continuation.resume(throwing: error)
                }
            }))
    }

    private func deadline(after timeout: Duration) -> UInt64 {
        let components = timeout.components
        let nanoseconds = UInt64(max(0, components.seconds)) * 1_000_000_000 + UInt64(max(0, components.attoseconds) / 1_000_000_000)
        return DispatchTime.now().uptimeNanoseconds + nanoseconds
    }

    /// Fails callers whose deadline passed: without a quorum nothing else
    /// would ever answer them.
    private func expireOverdueRequests() {
        let now = DispatchTime.now().uptimeNanoseconds
        for (index, waiting) in awaitingCommit where waiting.deadline <= now {
            awaitingCommit[index] = nil
            waiting.continuation.resume(throwing: ManagerError.timedOut(operation: "the write at index \(index)"))
        }
        for (index, waiting) in awaitingConfigurationCommit where waiting.deadline <= now {
            awaitingConfigurationCommit[index] = nil
            waiting.continuation.resume(throwing: ManagerError.timedOut(operation: "the membership change at index \(index)"))
        }
        for (id, read) in awaitingReadIndex where read.deadline <= now {
            awaitingReadIndex[id] = nil
            read.fail(.timedOut(operation: "a linearizable read"))
        }
        let overdue = awaitingApply.filter { $0.read.deadline <= now }
        if !overdue.isEmpty {
            awaitingApply.removeAll { $0.read.deadline <= now }
            for waiting in overdue { waiting.read.fail(.timedOut(operation: "a linearizable read")) }
        }
    }

    private func startRead(_ read: PendingRead) {
        guard read.linearizable else {
            read.body(state)
            return
        }
        let id = nextReadID
        nextReadID += 1
        do {
            try node.readIndex(context: withUnsafeBytes(of: id.bigEndian) { Array($0) })
            var issued = read
            issued.issuedUnder = (node.softState.term, node.softState.leader)
            awaitingReadIndex[id] = issued
        } catch {
            read.fail(.raft(error))
        }
    }

    private func handleReady() throws {
        let ready = node.ready()
        if !ready.messagesBeforePersist.isEmpty { transport.send(ready.messagesBeforePersist) }
        try storage.save(ready)
        if !ready.messages.isEmpty { transport.send(ready.messages) }
        if let snapshot = ready.snapshot {
            state = snapshot.data.isEmpty ? ClusterState() : try ClusterState(snapshot: snapshot.data)
        }
        var events: [ClusterEvent] = []
        for entry in ready.committedEntries {
            events += apply(entry)
        }
        for readState in ready.readStates {
            let id = readState.context.reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
            if let read = awaitingReadIndex.removeValue(forKey: id) {
                awaitingApply.append((readState.index, read))
            }
        }
        if let softState = ready.softState {
            // ReadIndex requests in flight die with the leadership they were
            // sent to (no answer comes from a deposed leader). Only those: a
            // read forwarded in this very iteration, to the leader this member
            // just learned of, is already under the new soft state.
            for (id, read) in awaitingReadIndex
            where read.issuedUnder.map({ $0.term != softState.term || $0.leader != softState.leader }) ?? true {
                awaitingReadIndex[id] = nil
                read.fail(.readInterrupted)
            }
        }
        node.advance(ready)
        if !events.isEmpty { publish(events) }
        let applied = node.appliedIndex
        var stillWaiting: [(index: UInt64, read: PendingRead)] = []
        for waiting in awaitingApply {
            if waiting.index <= applied { waiting.read.body(state) } else { stillWaiting.append(waiting) }
        }
        awaitingApply = stillWaiting
        try compactIfDue()
    }

    private func apply(_ entry: Entry) -> [ClusterEvent] {
        var events: [ClusterEvent] = []
        var outcome: Result<[ClusterEvent], Error> = .success([])
        if entry.kind == .normal && !entry.data.isEmpty {
            do {
                events = try state.apply(entryData: entry.data, index: entry.index)
                outcome = .success(events)
            } catch {
                outcome = .failure(ManagerError.rejected(error))
            }
        }
        if let waiting = awaitingCommit.removeValue(forKey: entry.index) {
            if waiting.term == entry.term {
                waiting.continuation.resume(with: outcome)
            } else {
                waiting.continuation.resume(throwing: ManagerError.proposalLost(index: entry.index))
            }
        }
        if let waiting = awaitingConfigurationCommit.removeValue(forKey: entry.index) {
            if waiting.term == entry.term && entry.kind == .configuration {
                waiting.continuation.resume()
            } else {
                waiting.continuation.resume(throwing: ManagerError.proposalLost(index: entry.index))
            }
        }
        return events
    }

    /// Starts a snapshot when enough entries were applied since the last.
    /// The state is a value: a copy is serialized on another thread (a large
    /// state takes tens of milliseconds to encode, which would stall
    /// replication), and the loop compacts when the bytes come back.
    private func compactIfDue() throws {
        let snapshotIndex = node.snapshotMetadata?.index ?? 0
        let applied = node.appliedIndex
        guard !snapshotInProgress, applied > snapshotIndex, applied - snapshotIndex >= configuration.snapshotEveryEntries else { return }
        snapshotInProgress = true
        let image = state
        DispatchQueue.global(qos: .utility).async { [self] in
            let data = image.snapshot()
            condition.lock()
            builtSnapshots.append((applied, data))
            condition.signal()
            condition.unlock()
        }
    }

    private func compact(through index: UInt64, data: [UInt8]) throws {
        snapshotInProgress = false
        // A snapshot installed from the leader meanwhile may already cover it.
        guard index > node.snapshotMetadata?.index ?? 0 else { return }
        let snapshot = try node.compact(through: index, data: data)
        try storage.compact(to: snapshot)
    }

    private func publish(_ events: [ClusterEvent]) {
        condition.lock()
        changeLog.append(events)
        let targets = watchers.values
        condition.unlock()
        for watcher in targets {
            for event in events where watcher.filter?(event) ?? true { watcher.continuation.yield(event) }
        }
    }

    private func publishStatus() {
        let status = Status(
            id: node.id, role: node.role, leader: node.leader, term: node.term,
            commitIndex: node.commitIndex, appliedIndex: node.appliedIndex,
            snapshotIndex: node.snapshotMetadata?.index ?? 0, configuration: node.configuration)
        condition.lock()
        publishedStatus = status
        condition.unlock()
    }

    private func failEverything(with error: ManagerError) {
        for waiting in awaitingCommit.values { waiting.continuation.resume(throwing: error) }
        awaitingCommit.removeAll()
        for waiting in awaitingConfigurationCommit.values { waiting.continuation.resume(throwing: error) }
        awaitingConfigurationCommit.removeAll()
        for read in awaitingReadIndex.values { read.fail(error) }
        awaitingReadIndex.removeAll()
        for waiting in awaitingApply { waiting.read.fail(error) }
        awaitingApply.removeAll()
    }

    private func shutDown() {
        failEverything(with: .stopped)
        condition.lock()
        let proposals = proposalQueue
        let reads = readQueue
        let changes = configurationChangeQueue
        proposalQueue.removeAll()
        readQueue.removeAll()
        configurationChangeQueue.removeAll()
        let targets = watchers.values
        watchers.removeAll()
        stopped = true
        condition.unlock()
        for proposal in proposals { proposal.continuation.resume(throwing: ManagerError.stopped) }
        for read in reads { read.fail(.stopped) }
        for change in changes { change.continuation.resume(throwing: ManagerError.stopped) }
        for watcher in targets { watcher.continuation.finish() }
        finished.signal()
    }
}

/// Resumes a continuation at most once, from any thread.
final class ResumeOnce<T: Sendable>: @unchecked Sendable {
    private var continuation: CheckedContinuation<T, Error>?
    private let lock = NSLock()

    init(_ continuation: CheckedContinuation<T, Error>) {
        self.continuation = continuation
    }

    func resume(returning value: T) {
        lock.lock()
        let continuation = self.continuation
        self.continuation = nil
        lock.unlock()
        continuation?.resume(returning: value)
    }

    func resume(throwing error: Error) {
        lock.lock()
        let continuation = self.continuation
        self.continuation = nil
        lock.unlock()
        continuation?.resume(throwing: error)
    }
}

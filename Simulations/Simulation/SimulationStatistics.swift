/// Counts of what a run did, including coverage marks for the rare paths
/// (a snapshot installed, a crash between sending and persisting, a
/// membership change committed) so a batch of seeds proves it reached them.
public struct SimulationStatistics: Sendable, Equatable {
    public var events = 0
    public var simulatedMs: UInt64 = 0
    public var messagesSent = 0
    public var messagesDropped = 0
    public var messagesDuplicated = 0
    public var leaderTerms = 0
    public var crashes = 0
    public var crashesBetweenSendAndPersist = 0
    /// Leaders that committed an entry while their own write of it was still running.
    public var commitsBeforeLeaderWrite = 0
    /// Crashes that lost a leader's write still running (acknowledged by followers or not).
    public var crashesDuringLeaderWrite = 0
    public var partitions = 0
    public var snapshotsTaken = 0
    public var snapshotsInstalled = 0
    public var configurationChangesCommitted = 0
    public var transfersRequested = 0
    public var entriesCommitted = 0
    public var writesAcknowledged = 0
    public var readsAnswered = 0
    public var operationsWithUnknownOutcome = 0
    public var linearizabilityUndecided = 0
    /// Cluster updates refused by compare-and-set (the path that prevents lost updates).
    public var versionConflicts = 0
    /// Cluster writes a leader refused by validating before proposing.
    public var refusedBeforeProposing = 0
    /// `services`: what the leader loops, workers and faults did.
    public var leaderPasses = 0
    public var assignments = 0
    public var nodesMarkedDown = 0
    public var workersKilled = 0
    public var sessionsOpened = 0
    public var sessionsLost = 0
    public var containersStarted = 0
    public var containersCrashed = 0
    public var operatorCalls = 0
    public var safetyChecks = 0
    /// A slot started while its old task still ran on a live worker the cluster had marked down (at-least-once).
    public var slotsRestartedBesideDownNodes = 0
    /// The longest time any seed took to converge after healing.
    public var convergedAfterMs: UInt64 = 0

    public init() {}

    public mutating func add(_ other: SimulationStatistics) {
        events += other.events
        simulatedMs += other.simulatedMs
        messagesSent += other.messagesSent
        messagesDropped += other.messagesDropped
        messagesDuplicated += other.messagesDuplicated
        leaderTerms += other.leaderTerms
        crashes += other.crashes
        crashesBetweenSendAndPersist += other.crashesBetweenSendAndPersist
        commitsBeforeLeaderWrite += other.commitsBeforeLeaderWrite
        crashesDuringLeaderWrite += other.crashesDuringLeaderWrite
        partitions += other.partitions
        snapshotsTaken += other.snapshotsTaken
        snapshotsInstalled += other.snapshotsInstalled
        configurationChangesCommitted += other.configurationChangesCommitted
        transfersRequested += other.transfersRequested
        entriesCommitted += other.entriesCommitted
        writesAcknowledged += other.writesAcknowledged
        readsAnswered += other.readsAnswered
        operationsWithUnknownOutcome += other.operationsWithUnknownOutcome
        linearizabilityUndecided += other.linearizabilityUndecided
        versionConflicts += other.versionConflicts
        refusedBeforeProposing += other.refusedBeforeProposing
        leaderPasses += other.leaderPasses
        assignments += other.assignments
        nodesMarkedDown += other.nodesMarkedDown
        workersKilled += other.workersKilled
        sessionsOpened += other.sessionsOpened
        sessionsLost += other.sessionsLost
        containersStarted += other.containersStarted
        containersCrashed += other.containersCrashed
        operatorCalls += other.operatorCalls
        safetyChecks += other.safetyChecks
        slotsRestartedBesideDownNodes += other.slotsRestartedBesideDownNodes
        convergedAfterMs = max(convergedAfterMs, other.convergedAfterMs)
    }

    public var summary: String {
        "events=\(events) simulated=\(simulatedMs)ms messages=\(messagesSent) dropped=\(messagesDropped) duplicated=\(messagesDuplicated)"
            + " leader-terms=\(leaderTerms) crashes=\(crashes) crash-before-persist=\(crashesBetweenSendAndPersist)"
            + " commits-before-leader-write=\(commitsBeforeLeaderWrite) crashes-during-leader-write=\(crashesDuringLeaderWrite)"
            + " partitions=\(partitions) snapshots-taken=\(snapshotsTaken) snapshots-installed=\(snapshotsInstalled)"
            + " config-changes=\(configurationChangesCommitted) transfers=\(transfersRequested) committed=\(entriesCommitted)"
            + " writes-acked=\(writesAcknowledged) reads=\(readsAnswered) unknown-outcome=\(operationsWithUnknownOutcome)"
            + " linearizability-undecided=\(linearizabilityUndecided) version-conflicts=\(versionConflicts) refused-before-proposing=\(refusedBeforeProposing)"
            + (leaderPasses == 0 ? "" : " leader-passes=\(leaderPasses) assignments=\(assignments) containers-started=\(containersStarted)"
                + " containers-crashed=\(containersCrashed) workers-killed=\(workersKilled) nodes-marked-down=\(nodesMarkedDown)"
                + " sessions-opened=\(sessionsOpened) sessions-lost=\(sessionsLost) operator-calls=\(operatorCalls) safety-checks=\(safetyChecks)"
                + " restarted-beside-down-node=\(slotsRestartedBesideDownNodes)"
                + " max-converged-after=\(convergedAfterMs)ms")
    }
}

/// Every fault and workload parameter of one run, drawn from its seed, so
/// each seed explores a different mix (one seed: heavy loss and rare
/// crashes; the next: a calm network and a leader crashing every second).
/// Faults stay within what the cluster must survive: messages are lost,
/// duplicated, delayed and reordered but never corrupted, disks lose only
/// writes that were never synced, and workers die as hosts do.
///
/// The network and the nemesis's partitions and manager crashes are common
/// to every simulation; what only one simulation injects is in ``raft``
/// (``FaultPlan/raft(random:options:)``) or ``services``
/// (``FaultPlan/services(random:options:)``).
struct FaultPlan: CustomStringConvertible {
    var network = NetworkFaults()

    /// Simulated milliseconds between two nemesis actions.
    var nemesisIntervalMs: ClosedRange<UInt64> = 100...600
    /// Relative weights of the common nemesis actions (zero when disabled).
    var partitionWeight = 0
    var crashWeight = 0
    var partitionLengthMs: ClosedRange<UInt64> = 50...1_500
    /// When crashing, the chance of picking the leader rather than anyone.
    var crashLeaderProbability = 0.5
    var downtimeMs: ClosedRange<UInt64> = 10...800

    /// `raft` and `cluster`: membership, transfers, disks, Raft limits, clients.
    var raft = RaftFaults()
    /// `services`: worker deaths, the fake runtime, the operator.
    var services = ServicesFaults()
    private var workload: SimulationWorkload

    init(workload: SimulationWorkload) { self.workload = workload }

    var description: String {
        switch workload {
        case .raft, .cluster:
            return network.description
                + " nemesis every \(nemesisIntervalMs)ms weights p\(partitionWeight)/c\(crashWeight)/m\(raft.membershipWeight)/t\(raft.transferWeight)"
                + raft.description
        case .services:
            return network.description
                + " nemesis every \(nemesisIntervalMs)ms weights p\(partitionWeight)/c\(crashWeight)/w\(services.workerDeathWeight)"
                + services.description
        }
    }

    static func percent(_ value: Double) -> String { "\(Int((value * 1000).rounded()) / 10)%" }
}

/// The cgroup limits of one container. `nil` means "no limit".
public struct ResourceLimits: Codable, Equatable, Sendable {
    /// Hard memory limit (memory.max / memory.limit_in_bytes).
    public var memoryLimitBytes: Int64?
    /// Swap the container may use on top of `memoryLimitBytes`; `nil` with a
    /// memory limit means none, so the limit is a real limit.
    public var memorySwapLimitBytes: Int64?
    /// CPU time per period (cpu.max / cpu.cfs_quota_us): 50_000 of 100_000 is half a CPU.
    public var cpuQuotaMicroseconds: Int64?
    public var cpuPeriodMicroseconds: Int64
    /// Relative CPU weight, cgroup v2 scale 1...10000 (100 is the default);
    /// converted to cpu.shares on v1.
    public var cpuWeight: Int?
    /// Maximum number of processes (pids.max).
    public var pidsLimit: Int?

    public static let defaultCPUPeriodMicroseconds: Int64 = 100_000

    public init(
        memoryLimitBytes: Int64? = nil,
        memorySwapLimitBytes: Int64? = nil,
        cpuQuotaMicroseconds: Int64? = nil,
        cpuPeriodMicroseconds: Int64 = ResourceLimits.defaultCPUPeriodMicroseconds,
        cpuWeight: Int? = nil,
        pidsLimit: Int? = nil
    ) {
        self.memoryLimitBytes = memoryLimitBytes
        self.memorySwapLimitBytes = memorySwapLimitBytes
        self.cpuQuotaMicroseconds = cpuQuotaMicroseconds
        self.cpuPeriodMicroseconds = cpuPeriodMicroseconds
        self.cpuWeight = cpuWeight
        self.pidsLimit = pidsLimit
    }

    /// `--cpus 1.5` as quota over the default period.
    public static func cpus(_ count: Double) -> Int64 {
        Int64(count * Double(defaultCPUPeriodMicroseconds))
    }

    /// cpu.weight (1...10000) to v1 cpu.shares (2...262144), the inverse of
    /// the OCI conversion `weight = 1 + (shares - 2) * 9999 / 262142`.
    static func shares(forWeight weight: Int) -> Int {
        2 + (weight - 1) * 262_142 / 9_999
    }
}

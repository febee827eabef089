import Foundation
import Raft
import Storage

/// `shoal-bench raft`: committed proposals per second and commit latency of
/// a three-member group, with in-memory storage (the cost of the core) and
/// with SQLite on disk (the cost of durability), for 1 and 64 proposers.
struct RaftBenchmark {
    let options: RaftBenchmarkOptions
    static let proposerCounts = [1, 64]
    static let members = 3

    func run() throws {

        for proposers in Self.proposerCounts {
            var pool = ProposerPool(concurrency: proposers, payloadBytes: options.payloadBytes)
            var cluster = InlineRaftCluster(storages: (0..<3).map { _ in MemoryRaftStorage() })
            let leader = try cluster.electLeader(pool: &pool)
            try cluster.run(pool: &pool, leader: leader, seconds: options.durationSeconds)
            reportRun("raft.memory.proposers\(proposers)", pool)
        }

        // This disk is shared and noisy: sample the fsync rate before and
        // after the durable runs, on the disk they use, and take the median.
        var fsyncSamples = try (0..<3).map { _ in try FsyncProbe.fsyncsPerSecond(directory: options.directory, seconds: 0.5) }
        var colocatedSamples = try (0..<3).map { _ in
            try FsyncProbe.fsyncsPerSecond(directory: options.directory, seconds: 0.5, writers: Self.members)
        }
        let saveLatencyMicroseconds = try measureStorageSaves()

        var durableThroughput = 0.0
        for proposers in Self.proposerCounts {
            let directory = options.directory + "/shoal-bench-raft-\(getpid())-\(proposers)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let storages: [RaftStorage] = try (1...Self.members).map { try SQLiteRaftStorage(path: "\(directory)/member\($0).sqlite") }
            let cluster = ThreadedRaftCluster(
                storages: storages, pool: ProposerPool(concurrency: proposers, payloadBytes: options.payloadBytes),
                leaderWritesInParallel: options.parallelLeaderWrites)
            let pool = try cluster.run(seconds: options.durationSeconds)
            reportRun("raft.sqlite.proposers\(proposers)", pool)
            durableThroughput = Double(pool.committed) / options.durationSeconds
        }
        fsyncSamples += try (0..<3).map { _ in try FsyncProbe.fsyncsPerSecond(directory: options.directory, seconds: 0.5) }
        colocatedSamples += try (0..<3).map { _ in
            try FsyncProbe.fsyncsPerSecond(directory: options.directory, seconds: 0.5, writers: Self.members)
        }
        let fsyncRate = fsyncSamples.sorted()[fsyncSamples.count / 2]
        let colocatedRate = colocatedSamples.sorted()[colocatedSamples.count / 2]
        report("raft.disk.fsync_rate", fsyncRate, "fsyncs/s")
        report("raft.disk.fsync_rate.writers\(Self.members)", colocatedRate, "fsyncs/s")
        if fsyncRate < colocatedRate / Double(Self.members) {
            // One writer alone must get at least its share of three. When it
            // does not, its wake-ups after each I/O wait for a busy CPU (seen
            // here: 150-400/s alone, 2,000+/s each of three), the bound
            // collapses and the fraction below means nothing.
            FileHandle.standardError.write(Data("""
                shoal-bench raft: warning: one writer's fsync rate (\(Int(fsyncRate))/s) is below a third of \
                \(Self.members) writers' (\(Int(colocatedRate))/s): the CPUs are too busy for the fsync bound to be \
                the disk's; run on a quieter machine (or under chrt) before trusting fraction_of_fsync_bound

                """.utf8))
        }
        // Each member must fsync before a batch commits, so durable throughput
        // cannot exceed fsyncs/s × the largest batch (one entry per proposer).
        let bound = fsyncRate * Double(Self.proposerCounts.last!)
        report("raft.sqlite.fsync_bound.proposers64", bound, "commits/s")
        report("raft.sqlite.proposers64.fraction_of_fsync_bound", durableThroughput / bound, "ratio")
        // Context, not the target: the three members share this one disk, so
        // each batch costs it three fsyncs, and the disk's rate with three
        // writers at once (above) is what they share. Measured the same way.
        let colocatedBound = colocatedRate / Double(Self.members) * Double(Self.proposerCounts.last!)
        report("raft.sqlite.colocated_bound.proposers64", colocatedBound, "commits/s")
        report("raft.sqlite.proposers64.fraction_of_colocated_bound", durableThroughput / colocatedBound, "ratio")
        // SQLite's own synced commit costs more than a bare fsync; this is the
        // ceiling with zero Raft and network overhead.
        let storageBound = 64 / (saveLatencyMicroseconds / 1e6)
        report("raft.sqlite.storage_bound.proposers64", storageBound, "commits/s")
        report("raft.sqlite.proposers64.fraction_of_storage_bound", durableThroughput / storageBound, "ratio")
    }

    /// The cost of one durable Ready on SQLite alone: 64 entries and a hard state.
    private func measureStorageSaves() throws -> Double {
        let path = options.directory + "/shoal-bench-save-\(getpid()).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let storage = try SQLiteRaftStorage(path: path)
        var latencies = LatencyRecorder()
        let payload = [UInt8](repeating: 0xab, count: options.payloadBytes)
        var index: UInt64 = 1
        for _ in 0..<500 {
            let entries = (0..<64).map { offset in Entry(term: 1, index: index + UInt64(offset), data: payload) }
            let start = MonotonicClock.nanoseconds
            try storage.save(hardState: HardState(term: 1, vote: 1, commit: index), entries: entries, snapshot: nil, sync: true)
            latencies.record(MonotonicClock.nanoseconds - start)
            index += 64
        }
        report("raft.sqlite.save64.latency_p50", latencies.percentileMicroseconds(0.5), "us")
        report("raft.sqlite.save64.latency_p99", latencies.percentileMicroseconds(0.99), "us")
        return latencies.percentileMicroseconds(0.5)
    }

    private func reportRun(_ name: String, _ pool: ProposerPool) {
        report("\(name).throughput", Double(pool.committed) / options.durationSeconds, "commits/s")
        report("\(name).latency_p50", pool.latencies.percentileMicroseconds(0.50), "us")
        report("\(name).latency_p99", pool.latencies.percentileMicroseconds(0.99), "us")
    }

    private func report(_ name: String, _ value: Double, _ unit: String) {
        let formatted = value >= 100 ? String(format: "%.0f", value) : String(format: "%.3f", value)
        FileHandle.standardOutput.write(Data("\(name) \(formatted) \(unit)\n".utf8))
    }
}

import Foundation

/// `shoal-bench <suite>`: release-build benchmarks. Each figure is printed on
/// its own line as `name value unit`.
let arguments = Array(CommandLine.arguments.dropFirst())
let usage = """
    usage: shoal-bench raft [--duration SECONDS] [--dir PATH] [--parallel-leader-writes]
           shoal-bench net [--duration SECONDS] [--bulk-mib MIB]
           shoal-bench cluster [--duration SECONDS] [--only shoal|etcd] [--clients N]
           shoal-bench registry [--layer-mib MIB] [--rounds N]
           shoal-bench scheduler [--nodes N] [--tasks N] [--batch N] [--full-scan]
           shoal-bench services
           shoal-bench dispatcher [--workers N] [--tasks N] [--kill N] [--steady SECONDS]

    raft   committed proposals/s and commit latency p50/p99 of a 3-member
           in-process cluster, in memory and on SQLite, for 1 and 64 proposers,
           and this machine's fsync rate (the bound on durable throughput),
           alone and with 3 writers at once (what the co-located members share);
           --parallel-leader-writes: the leader writes its log on a writer
           thread while replicating it (Raft dissertation §10.2.1)

    net    over loopback: RPC round trips/s over mutual TLS with 1 and 64 calls
           in flight, bulk MiB/s over one TLS connection, HTTP/1.1 keep-alive
           requests/s with 1 and 64 clients, and beside them this machine's
           `openssl speed -evp aes-128-gcm` for 16 KiB blocks (the ceiling of
           bulk TLS) with the ratio of the two

    cluster  3 Shoal managers (shoal daemon processes, mutual TLS, SQLite) and
           3 etcd members (TLS) on loopback, same run, equal 1 s election
           timeouts: API writes/s and p50/p99 latency with 1 and 64 clients,
           and failover time from kill -9 of the leader to the next write;
           --only measures one system, --clients one concurrency (no failover),
           for profiling a phase from outside

    registry  one image with a 200 MiB layer (seeded random bytes) on loopback:
           push and pull MiB/s of Shoal's client against Shoal's registry, beside
           skopeo against the CNCF distribution registry (docker-registry) in the
           same run, and the ratios ours/skopeo (median of --rounds, default 3)

    runtime  start-to-exit of /bin/true on one busybox rootfs, same run:
           Shoal's runtime API, crun run, runc run and the kernel floor
           (unshare of the same namespaces), as medians; then N containers
           (100) started at once, Shoal against crun; ratios ours/theirs.
           Needs root, busybox-static, crun and runc (install-dependencies.sh --bench)

    scheduler  the Scheduler core placing 1,000,000 tasks on 10,000 nodes
           (constraints zone!=z3 and role==worker, spread over zones) in passes
           of one 10,000-task service as the leader loop runs it: placements/s,
           seconds, peak RSS; placements checked against the constraints.
           --full-scan hands every task to each pass (the leader loop's path)
           instead of the node loads kept across passes

    services  the release `shoal dev` (temp data dir, no registry, own cgroup
           parent) with 100 busybox replicas (sleep 3600): seconds from
           `service create` to 100 running, from `service scale` to 200 running,
           and the shoal dev process's RSS with 200 running tasks and with
           10,000 more pending in the store (a service constrained to a node
           label nobody has); then removes everything. Needs root

    dispatcher  one release `shoal dev` manager (default 5 s heartbeats) and
           --workers (1,000) simulated workers in this process, each joined
           through the real join path and holding the agent's session over its
           own mutual-TLS connection (a fake runtime behind it): seconds to
           join them, from the first session to all ready, from `service
           create` of --tasks (3,000) replicas to all reported running; the
           manager's RSS, its CPU % over --steady (30) s of heartbeats alone;
           seconds from killing --kill (50) workers to their nodes down and
           tasks running elsewhere. Needs root
    """

guard let suite = arguments.first else {
    print(usage)
    exit(2)
}
switch suite {
case "raft":
    do {
        let options = try RaftBenchmarkOptions(parsing: Array(arguments.dropFirst()))
        try RaftBenchmark(options: options).run()
    } catch {
        FileHandle.standardError.write(Data("shoal-bench raft: \(error)\n".utf8))
        exit(1)
    }
case "net":
    do {
        let options = try NetBenchmarkOptions(parsing: Array(arguments.dropFirst()))
        try await NetBenchmark(options: options).run()
    } catch {
        FileHandle.standardError.write(Data("shoal-bench net: \(error)\n".utf8))
        exit(1)
    }
case "cluster":
    do {
        try await ClusterBenchmark(parsing: Array(arguments.dropFirst())).run()
    } catch {
        FileHandle.standardError.write(Data("shoal-bench cluster: \(error)\n".utf8))
        exit(1)
    }
case "registry":
    do {
        let options = try RegistryBenchmark.Options(parsing: Array(arguments.dropFirst()))
        try await RegistryBenchmark(options: options).run()
    } catch {
        FileHandle.standardError.write(Data("shoal-bench registry: \(error)\n".utf8))
        exit(1)
    }
case "runtime":
    do {
        var benchmark = RuntimeBenchmark()
        var rest = Array(arguments.dropFirst())[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst().flatMap(Int.init), value > 0 else {
                throw BenchmarkError(description: "usage: shoal-bench runtime [--runs N] [--concurrent N]")
            }
            switch flag {
            case "--runs": benchmark.runs = value
            case "--concurrent": benchmark.concurrent = value
            default: throw BenchmarkError(description: "unknown option \(flag): usage: shoal-bench runtime [--runs N] [--concurrent N]")
            }
        }
        try benchmark.run()
    } catch {
        FileHandle.standardError.write(Data("shoal-bench runtime: \(error)\n".utf8))
        exit(1)
    }
case "scheduler":
    do {
        try SchedulerBenchmark(options: SchedulerBenchmark.Options(parsing: Array(arguments.dropFirst()))).run()
    } catch {
        FileHandle.standardError.write(Data("shoal-bench scheduler: \(error)\n".utf8))
        exit(1)
    }
case "services":
    do {
        guard arguments.count == 1 else { throw BenchmarkError(description: "usage: shoal-bench services") }
        try await ServicesBenchmark().run()
    } catch {
        FileHandle.standardError.write(Data("shoal-bench services: \(error)\n".utf8))
        exit(1)
    }
case "dispatcher":
    do {
        try await DispatcherBenchmark(options: DispatcherBenchmark.Options(parsing: Array(arguments.dropFirst()))).run()
    } catch {
        FileHandle.standardError.write(Data("shoal-bench dispatcher: \(error)\n".utf8))
        exit(1)
    }
case "help", "--help", "-h":
    print(usage)
default:
    FileHandle.standardError.write(Data("shoal-bench: unknown suite '\(suite)'\n\(usage)\n".utf8))
    exit(2)
}

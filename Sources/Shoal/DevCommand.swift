import Daemon
import Foundation
import Net

/// `shoal dev [--data DIR] [--host unix:///PATH]`: a daemon in the
/// foreground that is already a one-node cluster (manager, worker and
/// agent) with a registry on 127.0.0.1:5000, state under DIR across
/// restarts. Stops on SIGINT/SIGTERM,
/// leaving its containers running (the next start re-adopts them).
enum DevCommand {
    static let usage = "shoal dev [--data DIR] [--host unix:///run/shoal/shoal.sock] [--heartbeat-period 5s] [--registry-port 5000|0|off] [--cgroup-parent shoal] [--bridge shoal0 --bip 10.88.0.1/16] [--default-publish-address IP]"
    static let defaultRegistryPort: UInt16 = 5000

    static func run(_ rest: [String]) -> Int32 {
        let arguments: ClusterCommands.Arguments
        do {
            arguments = try ClusterCommands.Arguments(rest, switches: [])
                .rejectingUnknown(ClusterCommands.networkFlags.union(["--data", "--host", "--heartbeat-period", "--registry-port", "--cgroup-parent"]))
        } catch {
            FileHandle.standardError.write(Data("shoal dev: \(error)\nusage: \(usage)\n".utf8))
            return 2
        }
        var host = arguments.value("--host") ?? ProcessInfo.processInfo.environment["SHOAL_HOST"] ?? "unix://\(DaemonSettings.defaultSocketPath)"
        if host.hasPrefix("unix://") { host.removeFirst("unix://".count) }
        guard host.hasPrefix("/") else {
            FileHandle.standardError.write(Data("shoal dev: --host must be unix:///PATH\n".utf8))
            return 2
        }
        let data = arguments.value("--data") ?? "/var/lib/shoal-dev"
        var settings = DaemonSettings(dataDirectory: data, socketPath: host)
        if let problem = ClusterCommands.heartbeatPeriod(arguments, into: &settings) {
            FileHandle.standardError.write(Data("shoal dev: \(problem)\n".utf8))
            return 2
        }
        switch arguments.value("--registry-port") {
        case "off":
            settings.registryListenAddress = nil
        case let text?:
            guard let port = UInt16(text) else {
                FileHandle.standardError.write(Data("shoal dev: --registry-port must be a port (0: any free one) or off, not \(text.debugDescription)\n".utf8))
                return 2
            }
            settings.registryListenAddress = .loopbackIPv4(port: port)
        case nil:
            settings.registryListenAddress = .loopbackIPv4(port: defaultRegistryPort)
        }
        // Benchmarks and tests beside another shoal dev keep their containers' cgroups apart with it.
        if let parent = arguments.value("--cgroup-parent") {
            guard !parent.isEmpty, !parent.contains(".."), !parent.hasPrefix("/") else {
                FileHandle.standardError.write(Data("shoal dev: --cgroup-parent must be a relative cgroup name like shoal\n".utf8))
                return 2
            }
            settings.cgroupParent = parent
        }
        if let problem = ClusterCommands.network(arguments, into: &settings) {
            FileHandle.standardError.write(Data("shoal dev: \(problem)\nusage: \(usage)\n".utf8))
            return 2
        }
        let daemon = Daemon(settings: settings)
        let socketPath = settings.socketPath
        let stopping = "shoal dev: stopping (containers keep running; the next `shoal dev --data \(data)` re-adopts them)"
        return ForegroundDaemon.run(daemon, name: "shoal dev", stopping: stopping) {
            try await daemon.start()
            try await daemon.ensureDevelopmentCluster()
            print("shoal dev: a one-node cluster (manager + worker) serving on unix://\(socketPath), state in \(data)")
            print("shoal dev: node \(daemon.nodeID ?? "?"), manager endpoint \(daemon.advertiseAddress ?? "?")")
            if let registry = daemon.registryAddress {
                print("shoal dev: registry on http://\(registry) (its store in \(data)/registry); services pull from it: "
                      + "`shoal image push IMAGE \(registry)/web:1` then `shoal service create \(registry)/web:1 ...`")
            } else {
                print("shoal dev: no registry (--registry-port off); import images with `shoal image import ROOTFS.tar NAME:TAG --data \(data)`")
            }
            print("shoal dev: try `shoal service create --name web --replicas 3 IMAGE COMMAND...`")
        }
    }
}

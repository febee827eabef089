import Daemon
import Foundation

/// `shoal dev [--data DIR] [--host unix:///PATH]`: a daemon in the
/// foreground that is already a one-node cluster (manager, worker and
/// agent), state under DIR across restarts. Stops on SIGINT/SIGTERM,
/// leaving its containers running (the next start re-adopts them).
enum DevCommand {
    static let usage = "shoal dev [--data DIR] [--host unix:///run/shoal/shoal.sock] [--heartbeat-period 5s]"

    static func run(_ rest: [String]) -> Int32 {
        let arguments: ClusterCommands.Arguments
        do {
            arguments = try ClusterCommands.Arguments(rest, switches: [])
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
        if let text = arguments.value("--heartbeat-period") {
            guard let milliseconds = try? ServiceCommands.milliseconds(text, "--heartbeat-period"), milliseconds > 0 else {
                FileHandle.standardError.write(Data("shoal dev: --heartbeat-period must be a duration like 5s\n".utf8))
                return 2
            }
            settings.heartbeatPeriod = .milliseconds(milliseconds)
        }
        let daemon = Daemon(settings: settings)
        let socketPath = settings.socketPath
        let stopping = "shoal dev: stopping (containers keep running; the next `shoal dev --data \(data)` re-adopts them)"
        return ForegroundDaemon.run(daemon, name: "shoal dev", stopping: stopping) {
            try await daemon.start()
            try await daemon.ensureDevelopmentCluster()
            print("shoal dev: a one-node cluster (manager + worker) serving on unix://\(socketPath), state in \(data)")
            print("shoal dev: node \(daemon.nodeID ?? "?"), manager endpoint \(daemon.advertiseAddress ?? "?")")
            print("shoal dev: no registry runs inside shoal dev yet; import images with `shoal image import ROOTFS.tar NAME:TAG --data \(data)`, or pull them from `shoal registry serve` with `shoal image pull`")
            print("shoal dev: try `shoal service create --name web --replicas 3 IMAGE COMMAND...`")
        }
    }
}

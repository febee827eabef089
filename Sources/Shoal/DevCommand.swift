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
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        let semaphore = DispatchSemaphore(value: 0)
        let box = ClusterCommands.CodeBox()
        var sources: [DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                Task {
                    print("shoal dev: stopping (containers keep running; the next `shoal dev --data \(data)` re-adopts them)")
                    ClusterCommands.flushOutput()
                    await daemon.stop()
                    semaphore.signal()
                }
            }
            source.resume()
            sources.append(source)
        }
        Task {
            do {
                try await daemon.start()
                try await daemon.ensureDevelopmentCluster()
                print("shoal dev: a one-node cluster (manager + worker) serving on unix://\(settings.socketPath), state in \(data)")
                print("shoal dev: node \(daemon.nodeID ?? "?"), manager endpoint \(daemon.advertiseAddress ?? "?")")
                print("shoal dev: the registry (127.0.0.1:5000) is not started yet: Sources/Registry has not landed; import images with `shoal image import ROOTFS.tar NAME:TAG --data \(data)`")
                print("shoal dev: try `shoal service create --name web --replicas 3 IMAGE COMMAND...`")
                ClusterCommands.flushOutput()
            } catch {
                FileHandle.standardError.write(Data("shoal dev: cannot start: \(error)\n".utf8))
                box.code = 1
                semaphore.signal()
            }
        }
        semaphore.wait()
        _ = sources
        return box.code
    }
}

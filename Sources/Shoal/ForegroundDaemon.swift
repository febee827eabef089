import Daemon
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a daemon in the foreground until SIGTERM or SIGINT (`shoal daemon`,
/// `shoal dev`): `start` brings it up and says so; a signal prints
/// `stopping`, stops it cleanly and returns 0; a failed start returns 1.
enum ForegroundDaemon {
    static func run(_ daemon: Daemon, name: String, stopping: String? = nil,
                    start: @escaping @Sendable () async throws -> Void) -> Int32 {
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
                    if let stopping {
                        print(stopping)
                        ClusterCommands.flushOutput()
                    }
                    await daemon.stop()
                    semaphore.signal()
                }
            }
            source.resume()
            sources.append(source)
        }
        Task {
            do {
                try await start()
                ClusterCommands.flushOutput()
            } catch {
                FileHandle.standardError.write(Data("\(name): cannot start: \(error)\n".utf8))
                box.code = 1
                semaphore.signal()
            }
        }
        semaphore.wait()
        _ = sources
        return box.code
    }
}

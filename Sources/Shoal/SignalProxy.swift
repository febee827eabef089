import Daemon
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// `--sig-proxy` (on by default, as Docker's): while the CLI is attached to a
/// container without a terminal, the signals it receives are sent to the
/// container's main process (`POST /kill?signal=N`) instead of ending the
/// CLI, which stays until the container exits with its own code. With a
/// terminal the keys reach the process through it, so nothing is proxied.
final class SignalProxy: @unchecked Sendable {
    /// What Docker forwards: every catchable signal but SIGCHLD, SIGPIPE,
    /// SIGURG and SIGWINCH (resizes), and none that reports a fault of ours.
    static let forwardedSignals: [Int32] = [
        SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR,
        SIGXCPU, SIGXFSZ, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT,
    ]

    private var sources: [DispatchSourceSignal] = []

    /// Starts forwarding to `container` through `client` until `stop()`.
    init(client: ControlClient, container: String) {
        let target = ContainerCommands.path(container, "/kill?signal=")
        for number in Self.forwardedSignals {
            signal(number, SIG_IGN)  // the source sees it; the default action would end us
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                // A container that already exited answers 409: nothing to do.
                Task { try? await client.perform(.post, target + String(number)) }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Stops forwarding: the signals get their default actions back.
    func stop() {
        guard !sources.isEmpty else { return }  // stopped already (stop, then deinit)
        for source in sources { source.cancel() }
        sources = []
        for number in Self.forwardedSignals { signal(number, SIG_DFL) }
    }

    deinit { stop() }
}

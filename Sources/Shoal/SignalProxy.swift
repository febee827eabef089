import Daemon
import Foundation
import Net
#if canImport(Glibc)
import Glibc
#endif

/// `--sig-proxy` (on by default, as Docker's): while the CLI is attached to a
/// container without a terminal, the signals it receives are sent to the
/// container's main process (`POST /kill?signal=N`) instead of ending the
/// CLI, which stays until the container exits with its own code. With a
/// terminal the keys reach the process through it, so nothing is proxied.
///
/// Every `run` without -d pays for this, so it is cheap to set up: a plain
/// handler per signal writes the number into a pipe (the self-pipe trick),
/// and the requests are sent by whoever reads the pipe: on the blocking
/// `run` path the main thread itself, which waits for the daemon in poll(2)
/// on the pipe too (``callerWatch``); elsewhere one thread. One libdispatch
/// signal source per signal (the first design) cost a round trip to
/// dispatch's manager thread each; the thread cost its start and, at exit,
/// a wake-up the process's end waited for.
final class SignalProxy: @unchecked Sendable {
    /// What Docker forwards: every catchable signal but SIGCHLD, SIGPIPE,
    /// SIGURG and SIGWINCH (resizes), and none that reports a fault of ours.
    static let forwardedSignals: [Int32] = [
        SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR,
        SIGXCPU, SIGXFSZ, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT,
    ]

    private var forwarding = true

    /// Starts forwarding to `container` through `client` until `stop()`.
    /// `onCallerThread`: the requests are sent, blocking, by the thread that
    /// serves ``callerWatch`` (after ``Forwarder/preparePipe()``); otherwise
    /// by the forwarder's own thread, as tasks.
    init(client: ControlClient, container: String, onCallerThread: Bool = false) {
        let target = ContainerCommands.path(container, "/kill?signal=")
        // A container that already exited answers 409: nothing to do.
        let started = onCallerThread
            ? Self.forwarder.start(onCallerThread: true) { number in try? client.performBlocking(.post, target + String(number)) }
            : Self.forwarder.start(onCallerThread: false) { number in Task { try? await client.perform(.post, target + String(number)) } }
        guard started else {  // no pipe (out of descriptors): the signals keep their default actions
            forwarding = false
            return
        }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = signalProxyHandler
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        for number in Self.forwardedSignals { sigaction(number, &action, nil) }
    }

    /// Stops forwarding: the signals get their default actions back.
    func stop() {
        guard forwarding else { return }  // stopped already (stop, then deinit)
        forwarding = false
        for number in Self.forwardedSignals { signal(number, SIG_DFL) }
        Self.forwarder.finish()
    }

    deinit { stop() }

    /// The process's one pipe from the handler, and the thread that reads it
    /// where one does.
    /// Its descriptors stay open for the life of the process: a handler that
    /// is still running while `stop()` restores the defaults must never
    /// write into a closed (or reused) descriptor.
    static let forwarder = Forwarder()

    /// The pipe to watch beside the daemon's socket on the blocking `run`
    /// path (after ``Forwarder/preparePipe()``): forwards what arrived.
    static var callerWatch: BlockingSocket.Watch? {
        forwarder.descriptorToWatch.map { BlockingSocket.Watch(descriptor: $0) { forwarder.forwardPending() } }
    }

    final class Forwarder: @unchecked Sendable {
        private let lock = NSLock()
        private var send: ((Int32) -> Void)?
        private var readDescriptor: Int32 = -1
        private var threadStarted = false

        /// Sets where signals go: sent by this forwarder's thread, or by the
        /// caller that serves ``SignalProxy/callerWatch``. False if the pipe
        /// or the thread cannot be made.
        func start(onCallerThread: Bool, _ send: @escaping (Int32) -> Void) -> Bool {
            guard onCallerThread ? preparePipe() : prepare() else { return false }
            lock.withLock { self.send = send }
            return true
        }

        /// Opens the pipe, once per process; its read end is non-blocking
        /// (``forwardPending()`` drains it). False if it cannot be made.
        @discardableResult
        func preparePipe() -> Bool {
            lock.withLock { openPipe() }
        }

        /// The pipe and a thread that reads it, once per process. The CLI's
        /// async paths call it before their request, so the thread starts
        /// while the daemon works, not after. False if the pipe or the thread
        /// cannot be made.
        @discardableResult
        func prepare() -> Bool {
            lock.withLock {
                guard !threadStarted else { return true }
                guard openPipe() else { return false }
                // A bare pthread: Foundation's Thread costs more to start than all the rest here.
                var thread = pthread_t()
                var attributes = pthread_attr_t()
                pthread_attr_init(&attributes)
                defer { pthread_attr_destroy(&attributes) }
                pthread_attr_setstacksize(&attributes, 256 << 10)
                pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
                let context = Unmanaged.passRetained(self).toOpaque()  // the forwarder lives as long as the process
                guard pthread_create(&thread, &attributes, { context in
                    Unmanaged<Forwarder>.fromOpaque(context!).takeUnretainedValue().readLoop()
                    return nil
                }, context) == 0 else {
                    Unmanaged<Forwarder>.fromOpaque(context).release()
                    return false
                }
                threadStarted = true
                return true
            }
        }

        /// Under the lock.
        private func openPipe() -> Bool {
            guard readDescriptor < 0 else { return true }
            var descriptors: [Int32] = [-1, -1]
            guard pipe(&descriptors) == 0 else { return false }
            for descriptor in descriptors {
                _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
                // The handler never blocks (a full pipe drops the signal); the reader drains.
                _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            }
            readDescriptor = descriptors[0]
            signalProxyWriteDescriptor = descriptors[1]
            return true
        }

        /// The pipe's read end for a caller that waits in poll(2) itself;
        /// nil before ``preparePipe()`` or when a thread reads it.
        var descriptorToWatch: Int32? {
            lock.withLock { readDescriptor >= 0 && !threadStarted ? readDescriptor : nil }
        }

        /// Sends every signal waiting in the pipe (none once stopped). False
        /// when the pipe failed rather than ran empty.
        @discardableResult
        func forwardPending() -> Bool {
            let descriptor = lock.withLock { readDescriptor }
            var byte: UInt8 = 0
            while true {
                let count = read(descriptor, &byte, 1)
                if count == 1 {
                    let send = lock.withLock { self.send }
                    send?(Int32(byte))
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    return count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
                }
            }
        }

        func finish() { lock.withLock { send = nil } }

        private func readLoop() {
            var ready = pollfd(fd: lock.withLock { readDescriptor }, events: Int16(POLLIN), revents: 0)
            while forwardPending() { _ = poll(&ready, 1, -1) }
        }
    }
}

/// The pipe the handler writes into; -1 until the first ``SignalProxy``.
nonisolated(unsafe) private var signalProxyWriteDescriptor: Int32 = -1

/// Async-signal-safe: one write(2) of the signal number, errno preserved.
private let signalProxyHandler: @convention(c) (Int32) -> Void = { number in
    let saved = errno
    var byte = UInt8(truncatingIfNeeded: number)
    _ = write(signalProxyWriteDescriptor, &byte, 1)
    errno = saved
}

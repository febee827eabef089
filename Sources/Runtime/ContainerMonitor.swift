import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer
import Foundation

/// Watches one running container on its own thread: drains its stdout and
/// stderr FIFOs into its JSON-lines log (``ContainerLogFile``), notices its exit through a pidfd, reaps
/// it when it is our child, and reports the exit once.
///
/// `detach()` stops watching without touching the container (daemon
/// shutdown): the FIFOs keep the output buffered and a new monitor of a
/// restarted runtime picks up where this one stopped.
final class ContainerMonitor: @unchecked Sendable {
    /// Once the process is gone, how long to wait for the last writers of the
    /// log FIFOs (processes of the dying pid namespace) before giving up.
    static let logDrainAfterExit: Duration = .seconds(2)
    static let readChunkBytes = 65536

    struct LogStream {
        var fifo: Int32
        /// `stdout` or `stderr`, as the log entries name it.
        var name: String
    }

    private let pidfd: Int32
    private var streams: [LogStream]
    private let log: ContainerLogFile?
    private let output: ContainerOutputHub?
    private let wakeDescriptor: Int32
    private var onExit: (@Sendable (ExitStatus) -> Void)?
    /// After each poll round that logged output (wakes log followers).
    private let onOutput: @Sendable () -> Void
    private let finished = DispatchSemaphore(value: 0)

    /// Takes ownership of `pidfd` and of the stream descriptors.
    init(pidfd: Int32, streams: [LogStream], log: ContainerLogFile?, output: ContainerOutputHub? = nil, onOutput: @escaping @Sendable () -> Void = {},
         onExit: @escaping @Sendable (ExitStatus) -> Void) throws(SystemError) {
        self.pidfd = pidfd
        self.onOutput = onOutput
        self.streams = streams
        self.log = log
        self.output = output
        self.onExit = onExit
        self.wakeDescriptor = try Syscall.run("eventfd") { shoal_eventfd() }
    }

    deinit {
        Syscall.close(wakeDescriptor)
    }

    func start() {
        BlockingThreadPool.shared.run { [self] in run() }
    }

    /// Stops the thread without reporting an exit; returns once it has stopped.
    func detach() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(wakeDescriptor, $0.baseAddress, 8) }
        finished.wait()
        finished.signal()  // later callers return at once
    }

    private func run() {
        var status: ExitStatus?
        var exitDeadline: ContinuousClock.Instant?
        defer {
            for stream in streams { Syscall.close(stream.fifo) }
            log?.close()
            Syscall.close(pidfd)
            finished.signal()
        }
        while true {
            var pollDescriptors = [pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0)]
            if status == nil { pollDescriptors.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            for stream in streams { pollDescriptors.append(pollfd(fd: stream.fifo, events: Int16(POLLIN), revents: 0)) }
            var timeout: Int32 = -1
            if let exitDeadline {
                let remaining = exitDeadline - ContinuousClock.now
                if remaining <= .zero || streams.isEmpty { break }
                timeout = Int32(max(1, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
            }
            let ready = poll(&pollDescriptors, nfds_t(pollDescriptors.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if pollDescriptors[0].revents != 0 { return }  // detached: report nothing
            var index = 1
            if status == nil {
                if pollDescriptors[1].revents != 0 {
                    status = reap()
                    exitDeadline = ContinuousClock.now + Self.logDrainAfterExit
                }
                index = 2
            }
            var open: [LogStream] = []
            var logged = false
            for stream in streams {
                let events = pollDescriptors[index].revents
                index += 1
                logged = logged || events != 0
                if events != 0, !drain(stream) {
                    Syscall.close(stream.fifo)
                    continue
                }
                open.append(stream)
            }
            streams = open
            if logged { onOutput() }
            if status != nil && streams.isEmpty { break }
        }
        if let status {
            // Last bytes a writer left before the deadline.
            for stream in streams { _ = drain(stream) }
            log?.flush()
            onExit?(status)
            onExit = nil  // drop the container reference it captured
        }
    }

    /// Copies what is buffered into the log. False at end of file.
    private func drain(_ stream: LogStream) -> Bool {
        var buffer = [UInt8](repeating: 0, count: Self.readChunkBytes)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(stream.fifo, $0.baseAddress, $0.count) }
            if count > 0 {
                log?.append(buffer[0..<count], stream: stream.name)
                output?.publish(buffer[0..<count], stream: stream.name)
                continue
            }
            if count == 0 { return false }
            if errno == EINTR { continue }
            return errno == EAGAIN
        }
    }

    private func reap() -> ExitStatus {
        var code: Int32 = 0
        var value: Int32 = 0
        while true {
            if shoal_waitid_pidfd(pidfd, &code, &value, WEXITED) == 0 { break }
            if shoal_errno() == EINTR { continue }
            return .unknown  // ECHILD: re-adopted, someone else's child
        }
        switch code {
        case Int32(CLD_EXITED): return .exited(value)
        case Int32(CLD_KILLED), Int32(CLD_DUMPED): return .signaled(value)
        default: return .unknown
        }
    }
}

import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer
import Foundation

/// The runtime's side of a container monitor's input FIFO: stdin data,
/// window sizes and end of stdin as frames (``SHOAL_MONITOR_FRAME_DATA``
/// ...), each written at once (at most PIPE_BUF bytes, so frames of
/// concurrent writers never interleave). Opened on first use, so a restarted
/// runtime writes to the FIFO of a container it re-adopted.
final class ContainerInputChannel: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var descriptor: Int32 = -1

    /// How long one frame may wait for room in the FIFO (the container not
    /// reading its stdin) before the write fails.
    static let frameWriteTimeout: Duration = .seconds(60)

    init(path: String) {
        self.path = path
    }

    deinit {
        if descriptor >= 0 { Syscall.close(descriptor) }
    }

    func send(data: [UInt8]) throws {
        var offset = 0
        while offset < data.count {
            let piece = data[offset..<min(data.count, offset + Int(SHOAL_MONITOR_MAX_DATA_BYTES))]
            var frame: [UInt8] = [UInt8(SHOAL_MONITOR_FRAME_DATA), UInt8(piece.count >> 8), UInt8(piece.count & 0xff)]
            frame.append(contentsOf: piece)
            try write(frame)
            offset += piece.count
        }
    }

    func send(windowSize: TerminalSize) throws {
        let rows = windowSize.rows
        let columns = windowSize.columns
        let frame: [UInt8] = [UInt8(SHOAL_MONITOR_FRAME_WINDOW), UInt8(rows >> 8), UInt8(rows & 0xff), UInt8(columns >> 8), UInt8(columns & 0xff)]
        try write(frame)
    }

    func sendEnd() throws {
        try write([UInt8(SHOAL_MONITOR_FRAME_END)])
    }

    /// Forgets the open FIFO (the container exited; a restart makes a new one).
    func reset() {
        lock.withLock {
            if descriptor >= 0 { Syscall.close(descriptor) }
            descriptor = -1
        }
    }

    private func write(_ frame: [UInt8]) throws {
        try lock.withLock {
            if descriptor < 0 {
                // A write to a FIFO whose monitor died must fail with EPIPE, not kill us.
                signal(SIGPIPE, SIG_IGN)
                let opened = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
                guard opened >= 0 else {
                    throw RuntimeError.hostSetupFailed(SystemError(call: "open", errno: errno, path: path))
                }
                descriptor = opened
            }
            let deadline = ContinuousClock.now + Self.frameWriteTimeout
            while true {
                let written = frame.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                if written == frame.count { return }
                let code = errno
                if written < 0 && code == EINTR { continue }
                if written < 0 && code == EAGAIN {
                    let remaining = deadline - ContinuousClock.now
                    var room = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                    if remaining > .zero, poll(&room, 1, Int32(clamping: remaining.components.seconds * 1000 + 1)) >= 0 { continue }
                    throw RuntimeError.hostSetupFailed(SystemError(call: "write", errno: ETIMEDOUT, path: path))
                }
                Syscall.close(descriptor)
                descriptor = -1
                throw RuntimeError.hostSetupFailed(SystemError(call: "write", errno: written < 0 ? code : EIO, path: path))
            }
        }
    }
}

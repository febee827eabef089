import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The shoal CLI run with a pseudo-terminal as its stdin, stdout and stderr,
/// as a user at a terminal runs it: the test types into the master and reads
/// what the CLI shows there.
final class PseudoTerminalSession: @unchecked Sendable {
    let master: Int32
    let process = Process()
    private let condition = NSCondition()
    private var received: [UInt8] = []
    private var closed = false
    /// TIOCSPTLCK and TIOCGPTN (asm-generic/ioctls.h), absent from Swift's Glibc module.
    static let setLock: UInt = 0x4004_5431
    static let getNumber: UInt = 0x8004_5430

    init(_ binary: String, _ arguments: [String], environment: [String: String], rows: UInt16, columns: UInt16) throws {
        // posix_openpt/unlockpt/ptsname by hand: Swift's Glibc module hides them.
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        var unlock: Int32 = 0
        var number: UInt32 = 0
        guard master >= 0, ioctl(master, Self.setLock, &unlock) == 0, ioctl(master, Self.getNumber, &number) == 0 else {
            throw TestFailure("opening a pseudo-terminal: \(String(cString: strerror(errno)))")
        }
        let slavePath = "/dev/pts/\(number)"
        var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)
        let slave = open(slavePath, O_RDWR | O_NOCTTY)
        guard slave >= 0 else { throw TestFailure("open \(slavePath): \(String(cString: strerror(errno)))") }
        let handle = FileHandle(fileDescriptor: slave, closeOnDealloc: true)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = environment
        process.standardInput = handle
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        try handle.close()  // the CLI holds it now; the master sees EIO once the CLI is gone
        let reader = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                condition.lock()
                if count > 0 { received += buffer[0..<count] } else { closed = true }
                condition.broadcast()
                condition.unlock()
                if count <= 0 { return }
            }
        }
        reader.start()
    }

    deinit {
        if process.isRunning { process.terminate() }
        close(master)
    }

    /// Everything shown so far.
    var screen: String {
        condition.lock()
        defer { condition.unlock() }
        return String(decoding: received, as: UTF8.self)
    }

    /// Whether the CLI has the terminal in raw mode (no echo, no line editing).
    var isRaw: Bool {
        var attributes = termios()
        guard tcgetattr(master, &attributes) == 0 else { return false }
        return attributes.c_lflag & tcflag_t(ECHO | ICANON) == 0
    }

    func type(_ text: String) {
        _ = text.utf8CString.withUnsafeBufferPointer { write(master, $0.baseAddress, $0.count - 1) }
    }

    /// Waits until the screen contains `text`.
    func waitFor(_ text: String, timeout: Duration = .seconds(30)) throws {
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds))
        condition.lock()
        defer { condition.unlock() }
        while !String(decoding: received, as: UTF8.self).contains(text) {
            if closed || !condition.wait(until: deadline) {
                throw TestFailure("waited for \(text.debugDescription) on the terminal; it shows \(String(decoding: received, as: UTF8.self).debugDescription)")
            }
        }
    }

    /// The terminal changes size, as a window resized (SIGWINCH to the CLI).
    func resize(rows: UInt16, columns: UInt16) {
        var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)
        kill(process.processIdentifier, SIGWINCH)
    }

    /// The CLI's exit status, waiting up to `timeout`.
    func exitStatus(timeout: Duration = .seconds(30)) throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw TestFailure("the CLI did not exit; the terminal shows \(screen.debugDescription)") }
            usleep(20_000)
        }
        return process.terminationStatus
    }
}

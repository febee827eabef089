import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// The CLI's own terminal while attached to a container's (`run -it`,
/// `exec -it`, `attach`): raw mode, so every key (Ctrl-C, Ctrl-D, arrows)
/// goes to the container's terminal, which does its own echo and line
/// editing; restored exactly as found on every way out.
final class TerminalMode {
    private let descriptor: Int32
    private var saved = termios()
    private var isRaw = false

    /// nil when `descriptor` is not a terminal.
    init?(descriptor: Int32 = STDIN_FILENO) {
        guard isatty(descriptor) == 1, tcgetattr(descriptor, &saved) == 0 else { return nil }
        self.descriptor = descriptor
    }

    deinit {
        restore()
    }

    func makeRaw() {
        var raw = saved
        // Output post-processing goes too (as docker's raw mode): the
        // container's terminal already turned its newlines into CR LF.
        cfmakeraw(&raw)
        if tcsetattr(descriptor, TCSADRAIN, &raw) == 0 { isRaw = true }
    }

    func restore() {
        guard isRaw else { return }
        _ = tcsetattr(descriptor, TCSADRAIN, &saved)
        isRaw = false
    }

    /// The size of the terminal on `descriptor` (stdout first: it is what
    /// the container draws on), nil when neither is a terminal.
    static func size() -> TerminalSize? {
        for descriptor in [STDOUT_FILENO, STDIN_FILENO, STDERR_FILENO] {
            var size = winsize()
            if ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0, size.ws_col > 0 {
                return TerminalSize(rows: size.ws_row, columns: size.ws_col)
            }
        }
        return nil
    }
}

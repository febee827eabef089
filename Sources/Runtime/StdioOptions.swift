/// How a container's main process is connected (`run -i`, `-t`): the
/// streams live in its shoal-monitor, so they outlive a daemon restart.
public struct StdioOptions: Codable, Equatable, Sendable {
    /// `-i`: stdin stays open; attached clients write to it
    /// (``ContainerRuntime/writeInput(_:_:)``).
    public var openStandardInput: Bool
    /// With `-i`: the first attached client's end of input closes the
    /// container's stdin (Docker's StdinOnce, set by `run -i` without `-d`).
    public var standardInputOnce: Bool
    /// `-t`: a pseudo-terminal is the process's controlling terminal and its
    /// stdin, stdout and stderr (output is one stream, logged as stdout).
    public var terminal: Bool
    /// The terminal's size at start; nil: the kernel's default (0x0).
    public var windowSize: TerminalSize?

    public init(openStandardInput: Bool = false, standardInputOnce: Bool = false, terminal: Bool = false, windowSize: TerminalSize? = nil) {
        self.openStandardInput = openStandardInput
        self.standardInputOnce = standardInputOnce
        self.terminal = terminal
        self.windowSize = windowSize
    }
}

/// A terminal's size in character cells (TIOCSWINSZ).
public struct TerminalSize: Codable, Equatable, Sendable {
    public var rows: UInt16
    public var columns: UInt16

    public init(rows: UInt16, columns: UInt16) {
        self.rows = rows
        self.columns = columns
    }
}

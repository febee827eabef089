import Foundation

/// A process to start inside a running container (`exec`).
public struct ExecSpec: Sendable {
    public var command: [String]
    /// Added to the container's environment (later entries win).
    public var environment: [String]
    /// Like ``ContainerSpec/user``; nil runs as the container's user.
    public var user: String?
    public var workingDirectory: String?
    /// After this long the process is killed (SIGKILL) and the result says
    /// ``ExecResult/timedOut``; nil: no limit.
    public var timeout: Duration?
    /// Written to the process's stdin, which then reaches end of file
    /// (`exec -i` with piped input); nil: /dev/null.
    public var standardInput: Data?
    /// The terminal's size at start (``ExecStreams/terminal``); nil: the kernel's default.
    public var windowSize: TerminalSize?

    public init(command: [String], environment: [String] = [], user: String? = nil, workingDirectory: String? = nil,
                timeout: Duration? = nil, standardInput: Data? = nil) {
        self.standardInput = standardInput
        self.command = command
        self.environment = environment
        self.user = user
        self.workingDirectory = workingDirectory
        self.timeout = timeout
    }
}

/// The outcome of an exec run to completion.
public struct ExecResult: Sendable {
    public var status: ExitStatus
    public var standardOutput: Data
    public var standardError: Data
    /// The process outlived ``ExecSpec/timeout`` and was killed.
    public var timedOut = false

    public var output: String { String(decoding: standardOutput, as: UTF8.self) }
    public var errorOutput: String { String(decoding: standardError, as: UTF8.self) }
}

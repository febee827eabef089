import Runtime

extension ContainerOptions {
    /// `-i`, `-t` and the terminal size of a create request; nil when neither
    /// flag is given (stdin is /dev/null).
    static func stdio(_ request: ContainerCreateRequest) throws -> StdioOptions? {
        let interactive = request.interactive == true
        let terminal = request.tty == true
        guard interactive || terminal else {
            if request.consoleSize != nil { throw APIError.invalid("consoleSize", "it needs -t (a terminal to size)") }
            return nil
        }
        return StdioOptions(openStandardInput: interactive, standardInputOnce: interactive && request.stdinOnce == true,
                            terminal: terminal, windowSize: try terminalSize(request.consoleSize))
    }

    /// `[rows, columns]`, each 1-65535; nil stays nil.
    static func terminalSize(_ value: [Int]?) throws -> TerminalSize? {
        guard let value else { return nil }
        guard value.count == 2, let rows = UInt16(exactly: value[0]), let columns = UInt16(exactly: value[1]), rows > 0, columns > 0 else {
            throw APIError.invalid("consoleSize", "\(value) must be [rows, columns], each from 1 to 65535")
        }
        return TerminalSize(rows: rows, columns: columns)
    }
}

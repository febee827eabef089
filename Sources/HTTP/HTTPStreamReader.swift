/// Pulls parser events from a transport, reading only when the parser needs
/// more bytes: the shell around ``HTTPParser`` for one connection. Used by one
/// task at a time (the connection's request loop, or whoever iterates the
/// body it handed out).
final class HTTPStreamReader: @unchecked Sendable {
    var parser: HTTPParser
    let transport: any HTTPTransport
    let readChunkBytes: Int
    private(set) var peerClosed = false

    init(parser: HTTPParser, transport: any HTTPTransport, readChunkBytes: Int) {
        self.parser = parser
        self.transport = transport
        self.readChunkBytes = readChunkBytes
    }

    /// The next event; nil once the peer closed between messages.
    /// `deadline` is asked before every read.
    func nextEvent(deadline: () -> ContinuousClock.Instant?) async throws -> HTTPParserEvent? {
        while true {
            if let event = try parser.next() { return event }
            if peerClosed { return nil }
            let bytes = try await transport.read(maxBytes: readChunkBytes, deadline: deadline())
            if bytes.isEmpty {
                peerClosed = true
                parser.finishInput()
            } else {
                parser.feed(bytes)
            }
        }
    }
}

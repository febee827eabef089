import HTTP
import Net

extension ControlClient {
    /// Whether ``streamLinesBlocking(_:_:jsonBody:watching:onSent:onHeaders:onLine:)`` can serve
    /// this client: a local Unix socket (no TLS).
    public var isLocal: Bool {
        if case .unix = base.address { return !base.usesTLS }
        return false
    }

    /// ``streamLines(_:_:json:)`` on the calling thread, for a local client
    /// (``isLocal``): one connection with blocking reads, no event loop or
    /// task, each non-empty line handed to `onLine` until it returns false or
    /// the answer ends. For the CLI's `container run`, whose start-up this is.
    /// The async path's time limits apply (the daemon's streams send a blank
    /// line every few seconds). A non-2xx answer throws its ``APIError``.
    /// `watch` is served while waiting for the daemon (the CLI's signal
    /// proxy); `onSent` runs once the request is out, before that wait.
    public func streamLinesBlocking(_ method: HTTPMethod, _ target: String, jsonBody body: [UInt8]? = nil,
                                    watching watch: BlockingSocket.Watch? = nil, onSent: () -> Void = {}, onHeaders: (HTTPHeaders) -> Void, onLine: (String) -> Bool) throws {
        precondition(isLocal, "streamLinesBlocking serves a local Unix socket only, not \(host)")
        var failure: Response?
        var buffer: [UInt8] = []
        try HTTPBlockingExchange.perform(method, target, to: base.address, host: base.host,
                                         body: body, contentType: body == nil ? nil : "application/json",
                                         responseTimeout: client.configuration.responseTimeout,
                                         bodyReadTimeout: client.configuration.bodyReadTimeout, watching: watch,
                                         onSent: onSent, onHead: { head in
                                             if (200..<300).contains(head.status.code) {
                                                 onHeaders(head.headers)
                                             } else {
                                                 failure = Response(status: head.status.code, headers: head.headers, body: [])
                                             }
                                         },
                                         onBody: { bytes in
                                             if failure != nil {
                                                 failure!.body += bytes
                                                 return failure!.body.count < 1 << 20
                                             }
                                             buffer += bytes
                                             for line in Self.takeLines(from: &buffer) where !onLine(line) { return false }
                                             return true
                                         })
        if let failure { throw failure.error! }
    }

    /// One request on the calling thread (``streamLinesBlocking(_:_:jsonBody:watching:onSent:onHeaders:onLine:)``'s
    /// way), its answer's body ignored: for the blocking `run`'s signal
    /// proxy (`POST /kill`). A non-2xx answer throws its ``APIError``.
    public func performBlocking(_ method: HTTPMethod, _ target: String) throws {
        try streamLinesBlocking(method, target, onHeaders: { _ in }, onLine: { _ in true })
    }

    /// Reads one line of each kind the run stream carries, discarding them:
    /// the first reading in a process pays one-time costs (type metadata,
    /// code paged in) that the CLI's `run` pays while the daemon works,
    /// not between the daemon's last line and its own exit.
    public static func prepareRunStreamReading() {
        HTTPBlockingExchange.prepareResponseReading()
        let text = #"{"log":"\n","stream":"stdout","time":"t"}"# + "\n" + #"{"exit":{"oomKilled":false,"statusCode":0}}"# + "\n"
        var sample = Array(text.utf8)
        for line in takeLines(from: &sample) { _ = ContainerRunStreamLine(line: line) }
    }
}

import HTTP
import Net

extension ControlClient {
    /// Whether ``streamLinesBlocking(_:_:json:onHeaders:onLine:)`` can serve
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
    public func streamLinesBlocking(_ method: HTTPMethod, _ target: String, json body: (any Encodable)? = nil,
                                    onHeaders: (HTTPHeaders) -> Void, onLine: (String) -> Bool) throws {
        precondition(isLocal, "streamLinesBlocking serves a local Unix socket only, not \(host)")
        var failure: Response?
        var buffer: [UInt8] = []
        try HTTPBlockingExchange.perform(method, target, to: base.address, host: base.host,
                                         body: body.map { Support.encode($0) }, contentType: body == nil ? nil : "application/json",
                                         responseTimeout: client.configuration.responseTimeout,
                                         bodyReadTimeout: client.configuration.bodyReadTimeout,
                                         onHead: { head in
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
}

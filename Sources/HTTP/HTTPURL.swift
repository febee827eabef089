import Net

/// Where a client request goes: the socket address, whether to use TLS, the
/// Host field and the request target.
///
/// Parsed from `http://127.0.0.1:5000/v2/`, `https://[::1]:8443/x` or
/// `http+unix://%2Frun%2Fshoal%2Fshoal.sock/v1/info` (the socket path
/// percent-encoded as the authority). Net does no name resolution: hosts are
/// numeric, except `localhost`, which means 127.0.0.1.
public struct HTTPURL: Sendable, Hashable, CustomStringConvertible {
    public var address: SocketAddress
    public var usesTLS: Bool
    /// The Host field value (`127.0.0.1:5000`; `localhost` for Unix sockets).
    public var host: String
    /// Origin-form target: `/path?query`, still encoded.
    public var target: String

    public init(address: SocketAddress, usesTLS: Bool = false, host: String? = nil, target: String = "/") {
        precondition(target.hasPrefix("/"), "a request target starts with /, got \(target.debugDescription)")
        self.address = address
        self.usesTLS = usesTLS
        self.target = target
        switch address {
        case .unix: self.host = host ?? "localhost"
        default: self.host = host ?? address.description
        }
    }

    public init(_ text: String) throws(HTTPError) {
        let schemeEnd = text.range(of: "://")
        guard let schemeEnd else { throw .invalidURL(text, reason: "no scheme: write http://, https:// or http+unix://") }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        let rest = text[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = String(rest[..<authorityEnd])
        var target = String(rest[authorityEnd...])
        if target.isEmpty { target = "/" } else if target.hasPrefix("?") { target = "/" + target }
        if let fragment = target.firstIndex(of: "#") { target = String(target[..<fragment]) }
        switch scheme {
        case "http", "https":
            let usesTLS = scheme == "https"
            let defaultPort: UInt16 = usesTLS ? 443 : 80
            let address: SocketAddress
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { throw .invalidURL(text, reason: "unclosed [ in an IPv6 host") }
                let host = String(authority[authority.index(after: authority.startIndex)..<close])
                let portText = authority[authority.index(after: close)...]
                let port = try Self.port(portText, default: defaultPort, url: text)
                address = .ipv6(host, port: port)
            } else {
                let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                var host = String(parts[0])
                guard !host.isEmpty else { throw .invalidURL(text, reason: "no host") }
                if host.lowercased() == "localhost" { host = "127.0.0.1" }
                let port = try Self.port(parts.count == 2 ? ":" + parts[1] : "", default: defaultPort, url: text)
                guard host.allSatisfy({ $0.isNumber || $0 == "." }) else {
                    throw .invalidURL(text, reason: "host \(host.debugDescription) is not a numeric address (Shoal does not resolve names)")
                }
                address = .ipv4(host, port: port)
            }
            self.init(address: address, usesTLS: usesTLS, host: authority, target: target)
        case "http+unix":
            guard let path = PercentEncoding.decode(authority), path.hasPrefix("/") else {
                throw .invalidURL(text, reason: "the authority must be the percent-encoded absolute socket path")
            }
            self.init(address: .unix(path: path), usesTLS: false, host: "localhost", target: target)
        default:
            throw .invalidURL(text, reason: "unsupported scheme \(scheme)")
        }
    }

    private static func port(_ text: some StringProtocol, default defaultPort: UInt16, url: String) throws(HTTPError) -> UInt16 {
        if text.isEmpty { return defaultPort }
        guard text.hasPrefix(":"), let port = UInt16(text.dropFirst()) else {
            throw .invalidURL(url, reason: "port \(String(text).debugDescription) is not a number 0-65535")
        }
        return port
    }

    /// The same server with another target (an absolute-path redirect).
    public func with(target: String) -> HTTPURL {
        var copy = self
        copy.target = target
        return copy
    }

    public var description: String {
        switch address {
        case .unix(let path): return "http+unix://\(PercentEncoding.encode(path))\(target)"
        default: return "\(usesTLS ? "https" : "http")://\(host)\(target)"
        }
    }

    /// Connections to the same key are interchangeable.
    var poolKey: String { "\(usesTLS ? "tls" : "plain") \(address)" }
}

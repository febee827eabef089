import Posix
#if canImport(Glibc)
import Glibc
#endif

/// Where a socket listens or connects: an IPv4 or IPv6 address and port, or a
/// Unix socket path. Hosts are numeric; Net does no name resolution because
/// peers are identified by certificate, never by hostname.
public enum SocketAddress: Hashable, Sendable, CustomStringConvertible {
    case ipv4(String, port: UInt16)
    case ipv6(String, port: UInt16)
    case unix(path: String)

    /// `127.0.0.1` on `port` (0 picks a free port).
    public static func loopbackIPv4(port: UInt16 = 0) -> SocketAddress { .ipv4("127.0.0.1", port: port) }
    /// `::1` on `port` (0 picks a free port).
    public static func loopbackIPv6(port: UInt16 = 0) -> SocketAddress { .ipv6("::1", port: port) }

    public var description: String {
        switch self {
        case .ipv4(let host, let port): return "\(host):\(port)"
        case .ipv6(let host, let port): return "[\(host)]:\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }

    /// The port of an IP address, nil for a Unix socket.
    public var port: UInt16? {
        switch self {
        case .ipv4(_, let port), .ipv6(_, let port): return port
        case .unix: return nil
        }
    }

    /// 127.0.0.0/8, ::1 or an IPv4-mapped 127.x address: the peer is this machine.
    public var isLoopback: Bool {
        switch self {
        case .ipv4(let host, _): return host.hasPrefix("127.")
        case .ipv6(let host, _): return host == "::1" || host.lowercased().hasPrefix("::ffff:127.")
        case .unix: return false
        }
    }

    var family: Int32 {
        switch self {
        case .ipv4: return AF_INET
        case .ipv6: return AF_INET6
        case .unix: return AF_UNIX
        }
    }

    /// Calls `body` with this address as a C `sockaddr`.
    func withSockAddr<Result>(
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Result
    ) throws -> Result {
        var storage = sockaddr_storage()
        let length: socklen_t
        switch self {
        case .ipv4(let host, let port):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
                throw NetError.invalidAddress("\(host) is not a numeric IPv4 address (e.g. 127.0.0.1)")
            }
            withUnsafeBytes(of: address) { source in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        case .ipv6(let host, let port):
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else {
                throw NetError.invalidAddress("\(host) is not a numeric IPv6 address (e.g. ::1)")
            }
            withUnsafeBytes(of: address) { source in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        case .unix(let path):
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            let capacity = MemoryLayout.size(ofValue: address.sun_path)
            guard !bytes.isEmpty, bytes.count < capacity else {
                throw NetError.invalidAddress("Unix socket path must be 1..\(capacity - 1) bytes, got \(bytes.count): \(path)")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            withUnsafeBytes(of: address) { source in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) }
            }
            length = socklen_t(MemoryLayout<sockaddr_un>.size)
        }
        return try withUnsafePointer(to: &storage) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                try body(address, length)
            }
        }
    }

    /// Decodes a C address returned by `accept`, `getsockname` or `getpeername`.
    init?(storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            var sinAddr = address.sin_addr
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            guard inet_ntop(AF_INET, &sinAddr, &text, socklen_t(text.count)) != nil else { return nil }
            self = .ipv4(Self.decode(text), port: UInt16(bigEndian: address.sin_port))
        case AF_INET6:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            var sinAddr = address.sin6_addr
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &sinAddr, &text, socklen_t(text.count)) != nil else { return nil }
            self = .ipv6(Self.decode(text), port: UInt16(bigEndian: address.sin6_port))
        case AF_UNIX:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_un.self) }
            var sunPath = address.sun_path
            let path = withUnsafeBytes(of: &sunPath) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            self = .unix(path: path)
        default:
            return nil
        }
    }

    private static func decode(_ text: [CChar]) -> String {
        String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The local or remote address of a socket.
    static func of(_ descriptor: Int32, peer: Bool) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                try? Syscall.run(peer ? "getpeername" : "getsockname") {
                    peer ? getpeername(descriptor, address, &length) : getsockname(descriptor, address, &length)
                }
            }
        }
        guard result != nil else { return nil }
        return SocketAddress(storage: storage)
    }
}

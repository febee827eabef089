import COpenSSL
import Foundation
import Net
import Raft

#if canImport(Glibc)
import Glibc
#endif

/// Small helpers shared by the daemon's parts.
enum Support {
    /// The Raft member id of a node: the first 8 bytes of SHA-256 of its node
    /// id, big-endian, never 0 (0 means "none" in Raft). Deterministic, so
    /// every manager derives the same id; stored in the node's managerStatus.
    static func raftID(forNodeID nodeID: String) -> NodeID {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        let bytes = Array(nodeID.utf8)
        _ = bytes.withUnsafeBufferPointer { input in digest.withUnsafeMutableBufferPointer { SHA256(input.baseAddress, input.count, $0.baseAddress) } }
        let value = digest.prefix(8).reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
        return value == 0 ? 1 : value
    }

    /// Parses `IP:PORT`, `[IPv6]:PORT`, or a bare IP (port `defaultPort`).
    static func parseAddress(_ text: String, defaultPort: UInt16, field: String) throws(APIError) -> SocketAddress {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .invalid(field, "'\(text)' has an unclosed ["); }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            var port = defaultPort
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let parsed = UInt16(rest.dropFirst()) else { throw .invalid(field, "'\(text)' has no valid port") }
                port = parsed
            }
            guard isNumericIPv6(host) else { throw .invalid(field, "'\(host)' is not a numeric IPv6 address") }
            return .ipv6(host, port: port)
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw .invalid(field, "'\(text)' must be IP:PORT (write IPv6 as [addr]:port)") }
        let host = String(parts[0])
        var port = defaultPort
        if parts.count == 2 {
            guard let parsed = UInt16(parts[1]) else { throw .invalid(field, "'\(text)' has no valid port (0-65535)") }
            port = parsed
        }
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else {
            throw .invalid(field, "'\(host)' is not a numeric IPv4 address (Shoal does not resolve names)")
        }
        return .ipv4(host, port: port)
    }

    static func isNumericIPv6(_ host: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, host, &address) == 1
    }

    /// `IP:PORT` text of an address (the form stored in the cluster state).
    static func text(_ address: SocketAddress) -> String {
        switch address {
        case .ipv4(let host, let port): return "\(host):\(port)"
        case .ipv6(let host, let port): return "[\(host)]:\(port)"
        case .unix(let path): return path
        }
    }

    static func host(of address: SocketAddress) -> String {
        switch address {
        case .ipv4(let host, _), .ipv6(let host, _): return host
        case .unix(let path): return path
        }
    }

    static func isUnspecified(_ address: SocketAddress) -> Bool {
        switch address {
        case .ipv4(let host, _): return host == "0.0.0.0"
        case .ipv6(let host, _): return host == "::"
        case .unix: return false
        }
    }

    /// The first non-loopback IPv4 address of an interface that is up (the
    /// advertise address when none is given and we listen on 0.0.0.0).
    static func firstExternalIPv4() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                  entry.pointee.ifa_flags & UInt32(IFF_UP) != 0, entry.pointee.ifa_flags & UInt32(IFF_LOOPBACK) == 0 else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            let ok = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet in
                var copy = inet.pointee.sin_addr
                return inet_ntop(AF_INET, &copy, &text, socklen_t(text.count)) != nil
            }
            if ok { return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        }
        return nil
    }

    // MARK: Files

    /// Writes `bytes` atomically (temporary file, fsync, rename) with `mode`.
    /// Without `synchronized` there is no fsync: a reader and a restarted
    /// process see the old or the new content, never half, but a machine
    /// crash may lose the write (or leave the file empty).
    static func writeFile(_ bytes: [UInt8], to path: String, mode: mode_t, synchronized: Bool = true) throws {
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard descriptor >= 0 else { throw SystemError(call: "open", errno: errno, path: temporary) }
        var failure: SystemError?
        if fchmod(descriptor, mode) != 0 { failure = SystemError(call: "fchmod", errno: errno, path: temporary) }
        var offset = 0
        while failure == nil && offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                failure = SystemError(call: "write", errno: errno, path: temporary)
            } else {
                offset += written
            }
        }
        if failure == nil && synchronized && fsync(descriptor) != 0 { failure = SystemError(call: "fsync", errno: errno, path: temporary) }
        close(descriptor)
        if failure == nil && rename(temporary, path) != 0 { failure = SystemError(call: "rename", errno: errno, path: path) }
        if let failure {
            unlink(temporary)
            throw failure
        }
    }

    static func readFile(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { Array($0) }
    }

    static func makeDirectory(_ path: String, mode: Int) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
        chmod(path, mode_t(mode))
    }

    // MARK: JSON

    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try! encoder.encode(value))
    }

    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }

    static func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

/// The timeout of ``withTimeout(_:onTimeout:_:)``.
struct TimedOut: Error {}

/// Runs `operation`, or throws `onTimeout()` once `timeout` passed. The
/// operation keeps running after a timeout (it may be a Raft proposal that
/// still commits), but nobody waits for it any more.
func withTimeout<T: Sendable>(
    _ timeout: Duration, onTimeout: @escaping @Sendable () -> any Error = { TimedOut() },
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let box = ResultBox<T>()
    return try await withCheckedThrowingContinuation { continuation in
        box.set(continuation)
        let work = Task {
            do { box.finish(.success(try await operation())) } catch { box.finish(.failure(error)) }
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled, box.finish(.failure(onTimeout())) { work.cancel() }
        }
        box.onFinish = { timer.cancel() }
    }
}

final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, any Error>?
    private var done = false
    var onFinish: (@Sendable () -> Void)? {
        get { lock.withLock { finishHook } }
        set {
            let runNow: Bool = lock.withLock {
                if done { return true }
                finishHook = newValue
                return false
            }
            if runNow { newValue?() }
        }
    }
    private var finishHook: (@Sendable () -> Void)?

    func set(_ continuation: CheckedContinuation<T, any Error>) {
        lock.withLock { self.continuation = continuation }
    }

    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (continuation, hook): (CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) = lock.withLock {
            guard !done else { return (nil, nil) }
            done = true
            defer { self.continuation = nil }
            return (self.continuation, finishHook)
        }
        guard let continuation else { return false }
        continuation.resume(with: result)
        hook?()
        return true
    }
}

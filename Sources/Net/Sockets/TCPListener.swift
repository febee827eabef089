import Posix
import Foundation
import CNetLinux
#if canImport(Glibc)
import Glibc
#endif

/// A listening stream socket: TCP on IPv4 or IPv6, or a Unix socket.
///
/// Accepted connections are spread over the group's event loops. One task
/// accepts at a time. A Unix socket's file is removed again by `close`.
public final class TCPListener: EventHandler, @unchecked Sendable {
    /// Pending-connection queue length passed to `listen` (the kernel caps it
    /// at net.core.somaxconn).
    public static let defaultBacklog: Int32 = 4096

    /// The bound address; with port 0 this carries the port the kernel chose.
    public let localAddress: SocketAddress
    private let group: EventLoopGroup
    private let loop: EventLoop
    private let descriptor: Int32
    private let readable: Readiness
    private let highWaterMarkBytes: Int
    private let lock = NSLock()
    private var registrationID: UInt64 = 0
    private var isClosed = false

    private init(descriptor: Int32, address: SocketAddress, group: EventLoopGroup, highWaterMarkBytes: Int) throws {
        self.descriptor = descriptor
        self.group = group
        self.loop = group.next()
        self.readable = Readiness(loop: loop)
        self.highWaterMarkBytes = highWaterMarkBytes
        self.localAddress = SocketAddress.of(descriptor, peer: false).map { bound in
            if case .unix = address { return address }
            return bound
        } ?? address
        registrationID = try loop.register(descriptor, handler: self)
    }

    deinit {
        release()
    }

    /// Binds and listens on `address`. A stale Unix socket file at the path is
    /// replaced; any other file there is an error.
    public static func bind(
        _ address: SocketAddress,
        backlog: Int32 = defaultBacklog,
        highWaterMarkBytes: Int = Connection.defaultHighWaterMarkBytes,
        group: EventLoopGroup = .shared
    ) throws -> TCPListener {
        let descriptor = try Syscall.run("socket", path: address.description) {
            socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        do {
            var one: Int32 = 1
            switch address {
            case .ipv4:
                try Syscall.run("setsockopt(SO_REUSEADDR)") {
                    setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
                }
            case .ipv6:
                try Syscall.run("setsockopt(SO_REUSEADDR)") {
                    setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
                }
                try Syscall.run("setsockopt(IPV6_V6ONLY)") {
                    setsockopt(descriptor, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
                }
            case .unix(let path):
                var status = stat()
                if lstat(path, &status) == 0 {
                    guard status.st_mode & S_IFMT == S_IFSOCK else {
                        throw SystemError(call: "bind", errno: EEXIST, path: path)
                    }
                    try Syscall.run("unlink", path: path) { unlink(path) }
                }
            }
            _ = try address.withSockAddr { pointer, length in
                try Syscall.run("bind", path: address.description) { Glibc.bind(descriptor, pointer, length) }
            }
            try Syscall.run("listen", path: address.description) { listen(descriptor, backlog) }
        } catch {
            Syscall.close(descriptor)
            throw error
        }
        return try TCPListener(descriptor: descriptor, address: address, group: group, highWaterMarkBytes: highWaterMarkBytes)
    }

    func handleEvents(_ events: UInt32) {
        readable.signal()
    }

    /// Waits for the next connection.
    ///
    /// - Throws: ``NetError/closed(operation:)`` once the listener is closed,
    ///   ``NetError/timedOut(operation:address:)`` at `deadline`,
    ///   `CancellationError`, or `SystemError` (`EMFILE`: out of descriptors).
    public func accept(deadline: ContinuousClock.Instant? = nil) async throws -> Connection {
        while true {
            try Task.checkCancellation()
            let seen = readable.edgeCount
            if let connection = try acceptNow() { return connection }
            try await readable.wait(since: seen, deadline: deadline) { [localAddress] in
                NetError.timedOut(operation: "accept", address: localAddress.description)
            }
        }
    }

    private func acceptNow() throws -> Connection? {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let accepted: Int32?
            do {
                accepted = try lock.withLock {
                    guard !isClosed else { throw NetError.closed(operation: "accept") }
                    return try withUnsafeMutablePointer(to: &storage) { pointer in
                        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                            try Syscall.run("accept4", path: localAddress.description, wouldBlock: true) {
                                accept4(descriptor, address, &length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                            }
                        }
                    }
                }
            } catch let error as SystemError where error.errno == ECONNABORTED {
                continue // the client gave up while queued: take the next one
            }
            guard let accepted else { return nil }
            let peer = SocketAddress(storage: storage)
            Connection.configureTCP(accepted, family: localAddress.family, peer: peer)
            return try Connection(
                descriptor: accepted,
                loop: group.next(),
                highWaterMarkBytes: highWaterMarkBytes,
                remoteAddress: peer
            )
        }
    }

    /// Stops listening; a pending `accept` fails with ``NetError/closed(operation:)``.
    public func close() {
        release()
        readable.fail(NetError.closed(operation: "accept"))
    }

    private func release() {
        lock.withLock {
            guard !isClosed else { return }
            isClosed = true
            loop.deregister(descriptor, id: registrationID)
            Syscall.close(descriptor)
            if case .unix(let path) = localAddress { unlink(path) }
        }
    }
}

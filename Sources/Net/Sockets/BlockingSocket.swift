import Posix
#if canImport(Glibc)
import Glibc
#endif

/// A connected stream socket whose reads and writes block the calling thread.
///
/// For a process that makes one call and exits (`shoal container run`): there
/// an event loop's threads and the hops between them and the cooperative pool
/// cost more than the call itself. Everything long-lived uses ``Connection``.
public final class BlockingSocket {
    public let address: SocketAddress
    private let descriptor: Int32

    /// Connects to `address`; the errors are ``Connection/connect(to:deadline:highWaterMarkBytes:group:)``'s.
    public init(connectingTo address: SocketAddress) throws {
        self.address = address
        descriptor = try Syscall.run("socket", path: address.description) {
            socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        Connection.configureTCP(descriptor, family: address.family, peer: address)
        do {
            try address.withSockAddr { pointer, length in
                _ = try Syscall.run("connect", path: address.description) { Glibc.connect(descriptor, pointer, length) }
            }
        } catch {
            Syscall.close(descriptor)
            throw error
        }
    }

    deinit { Syscall.close(descriptor) }

    /// Writes all of `bytes`.
    public func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            offset += try bytes.withUnsafeBytes { buffer in
                try Syscall.run("send", path: address.description) {
                    send(descriptor, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                }
            }
        }
    }

    /// The next bytes that arrive, at most `maxBytes`; empty at end of
    /// stream. Throws ``NetError/timedOut(operation:address:)`` when nothing
    /// arrived within `timeout` (nil: no limit).
    public func read(maxBytes: Int, timeout: Duration? = nil) throws -> [UInt8] {
        if let timeout {
            var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
            guard try Syscall.run("poll", path: address.description, { poll(&ready, 1, milliseconds) }) > 0 else {
                throw NetError.timedOut(operation: "read", address: address.description)
            }
        }
        var buffer = [UInt8](repeating: 0, count: maxBytes)
        let count = try buffer.withUnsafeMutableBytes { raw in
            try Syscall.run("read", path: address.description) { Glibc.read(descriptor, raw.baseAddress, raw.count) }
        }
        buffer.removeSubrange(count...)
        return buffer
    }
}

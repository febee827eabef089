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

    /// A descriptor waited on beside the socket: whenever it becomes
    /// readable during a ``read(maxBytes:timeout:watching:)``, `onReadable`
    /// runs on the reading thread (it must consume what made the descriptor
    /// readable) and the wait goes on. The CLI's `run` forwards the signals
    /// its handler wrote into a pipe this way, with no thread of its own.
    public struct Watch {
        public let descriptor: Int32
        public let onReadable: () throws -> Void

        public init(descriptor: Int32, onReadable: @escaping () throws -> Void) {
            self.descriptor = descriptor
            self.onReadable = onReadable
        }
    }

    /// The next bytes that arrive, at most `maxBytes`; empty at end of
    /// stream. Throws ``NetError/timedOut(operation:address:)`` when nothing
    /// arrived within `timeout` (nil: no limit); time spent in `watch`'s
    /// callback counts.
    public func read(maxBytes: Int, timeout: Duration? = nil, watching watch: Watch? = nil) throws -> [UInt8] {
        if timeout != nil || watch != nil {
            let deadline = timeout.map { ContinuousClock.now + $0 }
            while true {
                // A tuple, not an array: a new array type costs the CLI's `run` a metadata lookup.
                var ready = (pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
                             pollfd(fd: watch?.descriptor ?? -1, events: Int16(POLLIN), revents: 0))
                let count = nfds_t(watch == nil ? 1 : 2)
                let milliseconds = deadline.map { deadline -> Int32 in
                    let left = max(deadline - ContinuousClock.now, .zero)
                    return Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
                } ?? -1
                let readyCount = try withUnsafeMutablePointer(to: &ready) { pair in
                    try pair.withMemoryRebound(to: pollfd.self, capacity: 2) { descriptors in
                        try Syscall.run("poll", path: address.description) { poll(descriptors, count, milliseconds) }
                    }
                }
                guard readyCount > 0 else { throw NetError.timedOut(operation: "read", address: address.description) }
                if let watch, ready.1.revents != 0 { try watch.onReadable() }
                if ready.0.revents != 0 { break }
            }
        }
        // Not zero-filled first: the kernel writes only the pages the bytes
        // need, where zeroing 64 KiB faulted in 16 fresh heap pages per read
        // (a tenth of the CLI `run`'s page faults, two of them reads).
        return try [UInt8](unsafeUninitializedCapacity: maxBytes) { buffer, initialized in
            initialized = try Syscall.run("read", path: address.description) { Glibc.read(descriptor, buffer.baseAddress, buffer.count) }
        }
    }
}

import CContainer
import Foundation
import Posix
#if canImport(Glibc)
import Glibc
#endif

/// One published UDP port (`-p HOST:CONTAINER/udp`), as docker-proxy does it:
/// a socket bound on the host; each client (source address and port) gets
/// a session, a socket connected to the container's address and port, so
/// the container's replies go back to that client from the published
/// port. A session idle for ``defaultSessionIdleTimeout`` is closed; past
/// ``maxSessions`` the least recently active one makes room. No NAT: the
/// container sees the proxy's bridge-side address as the source.
///
/// One thread per published port, polling the host socket, the sessions and
/// a wake descriptor (``close()``).
final class UDPPortProxy: PublishedPortProxy, @unchecked Sendable {
    /// Docker's UDP session timeout (its conntrack default).
    static let defaultSessionIdleTimeout: Duration = .seconds(90)
    static let maxSessions = 1024
    /// The largest UDP payload over IPv4.
    static let maxDatagramBytes = 65_507

    private struct Session {
        var descriptor: Int32
        var client: sockaddr_in
        var lastActive: ContinuousClock.Instant
    }

    let published: PublishedPort
    let sessionIdleTimeout: Duration
    private let hostSocket: Int32
    private let target: sockaddr_in
    private let wakeDescriptor: Int32
    private let lock = NSLock()
    // Guarded by `lock`.
    private var running = false
    private var closed = false
    private let finished = DispatchSemaphore(value: 0)
    // Owned by the relay thread.
    private var sessions: [UInt64: Session] = [:]
    private var buffer = [UInt8](repeating: 0, count: UDPPortProxy.maxDatagramBytes)

    init(mapping: PublishedPort, containerAddress: String, sessionIdleTimeout: Duration = UDPPortProxy.defaultSessionIdleTimeout) throws {
        self.sessionIdleTimeout = sessionIdleTimeout
        guard let hostAddress = IPv4Subnet.parseAddress(mapping.hostAddress), let container = IPv4Subnet.parseAddress(containerAddress) else {
            throw RuntimeError.invalidSpec("published UDP port \(mapping.hostAddress):\(mapping.hostPort) needs IPv4 addresses")
        }
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw RuntimeError.portUnavailable(address: mapping.hostAddress, port: mapping.hostPort, SystemError(call: "socket", errno: errno, path: nil))
        }
        var address = Self.socketAddress(hostAddress, port: mapping.hostPort)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else {
            let error = SystemError(call: "bind", errno: errno, path: "\(mapping.hostAddress):\(mapping.hostPort)/udp")
            Syscall.close(descriptor)
            throw RuntimeError.portUnavailable(address: mapping.hostAddress, port: mapping.hostPort, error)
        }
        let wake = shoal_eventfd()
        guard wake >= 0 else {
            Syscall.close(descriptor)
            throw RuntimeError.hostSetupFailed(SystemError(call: "eventfd", errno: errno, path: nil))
        }
        hostSocket = descriptor
        wakeDescriptor = wake
        target = Self.socketAddress(container, port: mapping.containerPort)
        var actual = mapping
        actual.hostPort = UInt16(bigEndian: address.sin_port)
        published = actual
    }

    deinit {
        Syscall.close(hostSocket)
        Syscall.close(wakeDescriptor)
    }

    func start() {
        let starts = lock.withLock { () -> Bool in
            guard !running, !closed else { return false }
            running = true
            return true
        }
        guard starts else { return }
        let thread = Thread { [self] in
            relay()
            finished.signal()
        }
        thread.name = "shoal-udp-\(published.hostPort)"
        thread.start()
    }

    /// Stops relaying and closes every session; returns once the thread has stopped.
    func close() {
        let wasRunning = lock.withLock { () -> Bool in
            defer { closed = true }
            return running && !closed
        }
        guard wasRunning else { return }
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(wakeDescriptor, $0.baseAddress, 8) }
        finished.wait()
    }

    private func relay() {
        defer {
            for session in sessions.values { Syscall.close(session.descriptor) }
            sessions = [:]
        }
        while true {
            let keys = Array(sessions.keys)
            var descriptors = [pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0), pollfd(fd: hostSocket, events: Int16(POLLIN), revents: 0)]
            descriptors += keys.map { pollfd(fd: sessions[$0]!.descriptor, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&descriptors, nfds_t(descriptors.count), pollTimeoutMilliseconds())
            if ready < 0 && errno != EINTR { return }
            if descriptors[0].revents != 0 { return }
            if descriptors[1].revents != 0 { fromClients() }
            for (index, key) in keys.enumerated() where descriptors[index + 2].revents != 0 { fromContainer(key) }
            expireIdleSessions()
        }
    }

    /// Until the next session expires (-1: none to expire).
    private func pollTimeoutMilliseconds() -> Int32 {
        guard let oldest = sessions.values.map(\.lastActive).min() else { return -1 }
        let remaining = oldest + sessionIdleTimeout - .now
        return Int32(max(0, min(Int64(Int32.max), remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000 + 1)))
    }

    /// Every datagram waiting on the published port, each to its client's session.
    private func fromClients() {
        while true {
            var client = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let count = buffer.withUnsafeMutableBytes { bytes in
                withUnsafeMutablePointer(to: &client) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(hostSocket, bytes.baseAddress, bytes.count, 0, $0, &length) }
                }
            }
            if count < 0 {
                if errno == EINTR { continue }
                return  // EAGAIN: drained
            }
            let key = UInt64(client.sin_addr.s_addr) << 16 | UInt64(client.sin_port)
            guard let descriptor = session(for: key, client: client) else { continue }
            _ = buffer.withUnsafeBytes { send(descriptor, $0.baseAddress, count, 0) }
            sessions[key]?.lastActive = .now
        }
    }

    /// The client's session, opened on its first datagram.
    private func session(for key: UInt64, client: sockaddr_in) -> Int32? {
        if let existing = sessions[key] { return existing.descriptor }
        if sessions.count >= Self.maxSessions, let oldest = sessions.min(by: { $0.value.lastActive < $1.value.lastActive }) {
            Syscall.close(oldest.value.descriptor)
            sessions[oldest.key] = nil
        }
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }  // out of descriptors: the datagram is dropped, as UDP may
        var destination = target
        let connected = withUnsafePointer(to: &destination) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Syscall.close(descriptor)
            return nil
        }
        sessions[key] = Session(descriptor: descriptor, client: client, lastActive: .now)
        return descriptor
    }

    /// The container's replies on one session, back to its client from the published port.
    private func fromContainer(_ key: UInt64) {
        guard var session = sessions[key] else { return }
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(session.descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                break  // drained, or an ICMP error (nothing listens yet): the session stays
            }
            _ = buffer.withUnsafeBytes { bytes in
                withUnsafePointer(to: &session.client) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(hostSocket, bytes.baseAddress, count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            session.lastActive = .now
        }
        sessions[key] = session
    }

    private func expireIdleSessions() {
        let now = ContinuousClock.now
        for (key, session) in sessions where now - session.lastActive >= sessionIdleTimeout {
            Syscall.close(session.descriptor)
            sessions[key] = nil
        }
    }

    private static func socketAddress(_ address: UInt32, port: UInt16) -> sockaddr_in {
        var result = sockaddr_in()
        result.sin_family = sa_family_t(AF_INET)
        result.sin_port = port.bigEndian
        result.sin_addr.s_addr = address.bigEndian
        return result
    }
}

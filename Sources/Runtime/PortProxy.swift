import Net
import Posix
import Foundation

/// One published port: a listener on the host that relays every TCP
/// connection to the container's address and port, both directions, with
/// half-closes passed on (a userland proxy, as docker-proxy: no NAT rules, no
/// forwarding between interfaces). Lives in the runtime's process, from the
/// container's start to its exit.
final class PortProxy: PublishedPortProxy, @unchecked Sendable {
    /// How long the proxy waits for the container to accept a connection.
    static let connectTimeout: Duration = .seconds(10)
    /// Bytes relayed per read.
    static let relayChunkBytes = 64 * 1024

    let published: PublishedPort
    private let listener: TCPListener
    private let target: SocketAddress
    private let lock = NSLock()
    private var acceptTask: Task<Void, Never>?
    private var connections: [ObjectIdentifier: Connection] = [:]

    /// Binds the host side now (so a port in use fails the start before
    /// anything runs); relaying starts with ``start()``.
    init(mapping: PublishedPort, containerAddress: String) throws {
        let address = SocketAddress.ipv4(mapping.hostAddress, port: mapping.hostPort)
        do {
            listener = try TCPListener.bind(address)
        } catch let error as SystemError {
            throw RuntimeError.portUnavailable(address: mapping.hostAddress, port: mapping.hostPort, error)
        }
        var bound = mapping
        bound.hostPort = listener.localAddress.port ?? mapping.hostPort
        published = bound
        target = .ipv4(containerAddress, port: mapping.containerPort)
    }

    func start() {
        let task = Task.detached { [self] in await acceptLoop() }
        lock.withLock { acceptTask = task }
    }

    /// Stops listening and resets the connections still relayed.
    func close() {
        listener.close()
        let (task, open) = lock.withLock { () -> (Task<Void, Never>?, [Connection]) in
            defer { connections = [:] }
            return (acceptTask, Array(connections.values))
        }
        task?.cancel()
        open.forEach { $0.abort() }
    }

    private func acceptLoop() async {
        while !Task.isCancelled {
            let client: Connection
            do {
                client = try await listener.accept()
            } catch let error as SystemError where error.errno == EMFILE || error.errno == ENFILE {
                try? await Task.sleep(for: .milliseconds(100))  // out of descriptors: let some close
                continue
            } catch {
                return  // closed
            }
            Task.detached { [self] in await relay(client) }
        }
    }

    private func relay(_ client: Connection) async {
        let backend: Connection
        do {
            backend = try await Connection.connect(to: target, deadline: .now + Self.connectTimeout)
        } catch {
            client.abort()  // the container does not listen (yet): the client sees a reset
            return
        }
        track(client, backend, open: true)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await Self.pump(from: client, to: backend) }
            group.addTask { await Self.pump(from: backend, to: client) }
        }
        client.abort()
        backend.abort()
        track(client, backend, open: false)
    }

    private func track(_ client: Connection, _ backend: Connection, open: Bool) {
        let closed = lock.withLock { () -> Bool in
            if acceptTask?.isCancelled ?? false { return true }
            for connection in [client, backend] {
                connections[ObjectIdentifier(connection)] = open ? connection : nil
            }
            return false
        }
        if closed && open {
            client.abort()
            backend.abort()
        }
    }

    /// Copies until end of stream, then half-closes the other side; on a
    /// reset both ends are aborted (the other pump then ends too).
    private static func pump(from source: Connection, to destination: Connection) async {
        do {
            while true {
                let bytes = try await source.read(maxBytes: relayChunkBytes)
                if bytes.isEmpty { break }
                try await destination.write(bytes)
            }
            try await destination.shutdownWrite()
        } catch {
            source.abort()
            destination.abort()
        }
    }
}

import Foundation

/// A mutually authenticated TLS stream over a ``Connection``, with the same
/// async read/write API.
///
/// Created only by a successful handshake, so ``peerCertificate`` is a
/// certificate verified against the configured cluster root (or, for a joining
/// client, against the root pinned by the join token); ``peerIdentity`` says
/// which node and role it names. It is nil only on the server side of the join
/// endpoint, for a node that has no certificate yet. OpenSSL runs on the
/// calling task and moves ciphertext to and from the socket itself (through
/// a ``ConnectionBIO``); the event loop only reports readiness and drains
/// what the kernel did not take at once.
///
/// One reader and one writer may run concurrently; records produced by both
/// reach the socket in the order OpenSSL produced them.
public final class TLSConnection: @unchecked Sendable {
    /// Plaintext handed to OpenSSL per step of `write` (sixteen full
    /// records, sent in one piece), checking back-pressure between steps.
    /// Measured on loopback: 256 KiB costs ~7% less CPU per byte than 64 KiB
    /// (fewer sends and segments); the corked records still fit in L2.
    static let plaintextChunkBytes = 256 * 1024
    /// How long a failed handshake may take to deliver its alert before the socket is reset.
    static let alertGrace: Duration = .milliseconds(500)

    /// The TCP or Unix connection underneath.
    public let connection: Connection
    /// The peer's verified certificate; nil only for a certificate-less
    /// client of a server configured with ``TLSConfiguration/ClientCertificatePolicy/optional``.
    public let peerCertificate: Certificate?
    /// Joining clients: the root CA the server presented and the join token
    /// pinned. Store it: from now on it is the cluster's trusted root.
    public let pinnedRoot: Certificate?
    /// "TLSv1.3" or "TLSv1.2".
    public let protocolVersion: String
    /// The negotiated cipher suite, OpenSSL's name: "TLS_AES_128_GCM_SHA256"
    /// between nodes (see ``TLSContext``'s preference order).
    public let cipherSuite: String

    private let session: SSLSession
    private let lock = NSLock() // guards `session`

    private init(connection: Connection, session: SSLSession, peerCertificate: Certificate?, pinnedRoot: Certificate?) {
        self.connection = connection
        self.session = session
        self.peerCertificate = peerCertificate
        self.pinnedRoot = pinnedRoot
        self.protocolVersion = session.protocolVersion
        self.cipherSuite = session.cipherSuite
    }

    /// CN / OU / O of the verified peer.
    public var peerSubject: DistinguishedName? { peerCertificate?.subject }
    /// The peer as a Shoal node (node id, role, cluster), if its subject is one.
    public var peerIdentity: NodeIdentity? { peerCertificate?.nodeIdentity }

    /// Connects to `address` and runs the client handshake.
    public static func connect(
        to address: SocketAddress,
        context: TLSContext,
        deadline: ContinuousClock.Instant? = nil,
        group: EventLoopGroup = .shared
    ) async throws -> TLSConnection {
        let connection = try await Connection.connect(to: address, deadline: deadline, group: group)
        return try await handshake(over: connection, context: context, deadline: deadline)
    }

    /// Runs the handshake for `context.side` over an open connection (for a
    /// server: one returned by ``TCPListener/accept(deadline:)``). On failure
    /// the alert is sent, the connection closed, and a ``TLSError`` thrown.
    public static func handshake(
        over connection: Connection,
        context: TLSContext,
        deadline: ContinuousClock.Instant? = nil
    ) async throws -> TLSConnection {
        do {
            let session = try SSLSession(context: context, connection: connection)
            while true {
                let seen = connection.readEdgeCount
                switch session.handshake() {
                case .progressed:
                    let peer = session.peerCertificate
                    if let digest = context.configuration.pinnedRootDigest {
                        let root: Certificate
                        do {
                            root = try verifyPinnedRoot(digest, session: session)
                        } catch {
                            // Not the pinned cluster: leave at once, having sent nothing.
                            connection.abort()
                            throw error
                        }
                        return TLSConnection(connection: connection, session: session, peerCertificate: peer, pinnedRoot: root)
                    }
                    let optional = context.side == .server && context.configuration.clientCertificates == .optional
                    guard peer != nil || optional else { throw TLSError.missingPeerCertificate }
                    return TLSConnection(connection: connection, session: session, peerCertificate: peer, pinnedRoot: nil)
                case .wantRead:
                    try await connection.waitUntilReadable(since: seen, deadline: deadline)
                case .endOfStream:
                    throw TLSError.failed(operation: "handshake", details: "the peer closed the connection during the handshake (it probably refused our certificate or protocol version)")
                case .closedByPeer:
                    throw TLSError.failed(operation: "handshake", details: "the peer sent close_notify during the handshake")
                case .failed(let error):
                    throw error
                case .transportFailed(let error):
                    throw error
                }
            }
        } catch let error as TLSError {
            // Let our alert reach the peer, then release the socket.
            try? await connection.close(deadline: .now + alertGrace)
            connection.abort()
            throw error
        } catch {
            connection.abort()
            throw error
        }
    }

    /// Finds the CA certificate in the server's chain whose digest is `digest`
    /// and verifies the server's leaf against it alone.
    private static func verifyPinnedRoot(_ digest: String, session: SSLSession) throws -> Certificate {
        let chain = session.peerChain
        guard let leaf = chain.first else { throw TLSError.missingPeerCertificate }
        let authorities = chain.dropFirst().filter { $0.isCertificateAuthority }
        guard let root = authorities.first(where: { $0.sha256Digest == digest }) else {
            throw TLSError.pinnedRootMismatch(expected: digest, presented: authorities.map(\.sha256Digest))
        }
        if let reason = CertificateStore(trusting: [root]).verifyServerCertificate(leaf) {
            throw TLSError.peerCertificateRejected(reason: reason)
        }
        return root
    }

    /// Reads up to `maxBytes` of plaintext; `[]` once the peer sent close_notify.
    ///
    /// - Throws: ``TLSError/unexpectedEndOfStream`` if the TCP stream ends
    ///   without close_notify; ``TLSError/refusedByPeer(alert:)`` if the peer
    ///   rejected us after the handshake (TLS 1.3 client certificates are
    ///   checked then); timeouts and cancellation as ``Connection/read(maxBytes:deadline:)``
    ///   (the connection stays usable).
    ///
    /// Returns as many records' plaintext as are already received (up to
    /// `maxBytes`), decrypted straight into the returned array.
    public func read(maxBytes: Int = 16 * 1024, deadline: ContinuousClock.Instant? = nil) async throws -> [UInt8] {
        precondition(maxBytes > 0, "read(maxBytes:) needs a positive size, got \(maxBytes)")
        while true {
            let seen = connection.readEdgeCount
            var step = SSLSession.Step.wantRead
            let plaintext: [UInt8] = lock.withLock {
                // Decrypt a record first (if none is), to size the array by
                // what can be returned without waiting: that record and the
                // ciphertext received after it. A large `maxBytes` then
                // allocates no more than the data.
                if session.pendingPlaintextBytes == 0 {
                    step = session.peek()
                    guard case .progressed = step else { return [] }
                }
                let capacity = min(maxBytes, session.readableBytesBound)
                let plaintext = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                    while count < capacity {
                        step = session.read(into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[count...]))
                        guard case .progressed(let got) = step else { break }
                        count += got
                    }
                }
                return plaintext
            }
            if !plaintext.isEmpty { return plaintext }
            switch step {
            case .progressed:
                continue
            case .wantRead:
                try await connection.waitUntilReadable(since: seen, deadline: deadline)
            case .endOfStream:
                throw TLSError.unexpectedEndOfStream
            case .closedByPeer:
                return []
            case .failed(let error):
                throw error
            case .transportFailed(let error):
                throw error
            }
        }
    }

    /// Encrypts and sends `bytes`, waiting while the socket's send buffer is
    /// above its high-water mark. Timeouts and cancellation abort the
    /// connection, as ``Connection/write(_:deadline:)``.
    public func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant? = nil) async throws {
        var start = 0
        repeat {
            try Task.checkCancellation()
            let end = min(bytes.count, start + Self.plaintextChunkBytes)
            let buffered: Int = try lock.withLock {
                switch session.write(bytes[start..<end]) {
                case .progressed: break
                case .failed(let error): throw error
                case .transportFailed(let error): throw error
                case let step: throw TLSError.failed(operation: "write", details: "OpenSSL did not take the data (\(step))")
                }
                return connection.bufferedBytes
            }
            start = end
            if buffered > connection.lowWaterMarkBytes {
                try await connection.waitForDrain(toBytes: connection.lowWaterMarkBytes, deadline: deadline)
            }
        } while start < bytes.count
    }

    /// Encrypts and sends `bytes` now, on the calling thread, without
    /// waiting: what the kernel does not take stays in the connection's
    /// send buffer (see ``Connection/writeNow(_:)``). Returns the bytes
    /// still buffered; above ``Connection/lowWaterMarkBytes`` the caller
    /// should let the buffer drain (``write(_:deadline:)``) before more.
    public func writeNow(_ bytes: [UInt8]) throws -> Int {
        try lock.withLock {
            var start = 0
            repeat {
                let end = min(bytes.count, start + Self.plaintextChunkBytes)
                switch session.write(bytes[start..<end]) {
                case .progressed: break
                case .failed(let error): throw error
                case .transportFailed(let error): throw error
                case let step: throw TLSError.failed(operation: "write", details: "OpenSSL did not take the data (\(step))")
                }
                start = end
            } while start < bytes.count
            return connection.bufferedBytes
        }
    }

    /// The loop of the connection underneath (see ``Connection/eventLoop``).
    public var eventLoop: EventLoop { connection.loop }

    /// The low-water mark of the connection underneath.
    public var lowWaterMarkBytes: Int { connection.lowWaterMarkBytes }

    /// Sends close_notify, then closes the connection gracefully (see
    /// ``Connection/close(deadline:)``). Must not overlap a `read`.
    public func close(deadline: ContinuousClock.Instant? = nil) async throws {
        // A socket that failed already just does not get the close_notify.
        lock.withLock { session.shutdown() }
        try await connection.close(deadline: deadline)
    }

    /// Resets the connection at once.
    public func abort() {
        connection.abort()
    }
}

import COpenSSL

/// One OpenSSL `SSL` (owned here) whose records travel through a
/// ``ConnectionBIO``: straight between OpenSSL's buffers and the connection's
/// socket. It never waits: when it needs more ciphertext it says
/// ``Step/wantRead`` and the caller waits for the socket to become readable.
///
/// Not thread-safe: ``TLSConnection`` calls it under its lock, and drains the
/// OpenSSL error queue before releasing the lock (the queue is per thread and
/// a task may resume on another thread after an `await`).
final class SSLSession {
    enum Step {
        case progressed(Int)
        /// Nothing more to read from the socket yet.
        case wantRead
        /// The TCP stream ended before the peer's close_notify.
        case endOfStream
        case closedByPeer
        case failed(TLSError)
        /// The socket failed (reset, closed by us, ...): the error as the connection reported it.
        case transportFailed(any Error)
    }

    /// Room reserved for one handshake flight: certificates of a short chain.
    static let handshakeFlightBytes = 8 * 1024

    let pointer: OpaquePointer
    private let transport: ConnectionBIO

    init(context: TLSContext, connection: Connection) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.pointer) else {
            throw .failed(operation: "SSL_new", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
        }
        transport = ConnectionBIO(connection: connection)
        SSL_set_bio(ssl, transport.pointer, transport.pointer) // one reference, now the SSL's
        switch context.side {
        case .server: SSL_set_accept_state(ssl)
        case .client: SSL_set_connect_state(ssl)
        }
        self.pointer = ssl
    }

    deinit {
        SSL_free(pointer) // frees the BIO too, before `transport` goes
    }

    /// Plaintext of the record being read that OpenSSL holds decrypted.
    var pendingPlaintextBytes: Int { Int(SSL_pending(pointer)) }

    /// The most plaintext the next reads can return without receiving more:
    /// the record OpenSSL holds decrypted plus the ciphertext received after
    /// it (OpenSSL reads exactly one record at a time, and a record's
    /// plaintext is never longer than its ciphertext).
    var readableBytesBound: Int { pendingPlaintextBytes + transport.bufferedInboundBytes }

    func handshake() -> Step {
        OpenSSLErrorQueue.clear()
        // A flight (e.g. ServerHello to Finished) leaves in one segment.
        transport.cork(reservingBytes: Self.handshakeFlightBytes)
        let result = SSL_do_handshake(pointer)
        transport.uncork()
        if result == 1, let failure = transport.failure { return .transportFailed(failure) }
        return result == 1 ? .progressed(0) : classify(result, operation: "handshake")
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Step {
        OpenSSLErrorQueue.clear()
        var count = 0
        let result = SSL_read_ex(pointer, buffer.baseAddress, buffer.count, &count)
        return result == 1 ? .progressed(count) : classify(result, operation: "read")
    }

    /// Decrypts the next record if none is pending, consuming nothing: then
    /// ``pendingPlaintextBytes`` says how much the next reads return.
    func peek() -> Step {
        OpenSSLErrorQueue.clear()
        var byte: UInt8 = 0
        var count = 0
        let result = SSL_peek_ex(pointer, &byte, 1, &count)
        return result == 1 ? .progressed(count) : classify(result, operation: "read")
    }

    /// Encrypts `bytes` and sends the records in one piece.
    func write(_ bytes: ArraySlice<UInt8>) -> Step {
        OpenSSLErrorQueue.clear()
        var count = 0
        transport.cork(reservingBytes: ConnectionBIO.ciphertextBytes(forPlaintext: bytes.count))
        let result = bytes.withUnsafeBytes { SSL_write_ex(pointer, $0.baseAddress, $0.count, &count) }
        transport.uncork()
        if result == 1, let failure = transport.failure { return .transportFailed(failure) }
        return result == 1 ? .progressed(count) : classify(result, operation: "write")
    }

    /// Sends our close_notify.
    func shutdown() {
        OpenSSLErrorQueue.clear()
        _ = SSL_shutdown(pointer)
        OpenSSLErrorQueue.clear()
    }

    var peerCertificate: Certificate? {
        SSL_get1_peer_certificate(pointer).map(Certificate.init(taking:))
    }

    /// The chain the peer presented, leaf first (for a client; a server's
    /// view omits the leaf, per OpenSSL).
    var peerChain: [Certificate] {
        guard let stack = shoal_SSL_get_peer_cert_chain(pointer) else { return [] }
        return (0..<shoal_sk_X509_num(stack)).compactMap { index in
            shoal_sk_X509_value(stack, index).map(Certificate.init(retaining:))
        }
    }

    /// E.g. "TLSv1.3".
    var protocolVersion: String { String(cString: SSL_get_version(pointer)) }

    /// The negotiated suite, e.g. "TLS_AES_128_GCM_SHA256" (OpenSSL's name).
    var cipherSuite: String {
        guard let cipher = SSL_get_current_cipher(pointer) else { return "" }
        return String(cString: SSL_CIPHER_get_name(cipher))
    }

    private func classify(_ result: Int32, operation: String) -> Step {
        let code = SSL_get_error(pointer, result)
        switch code {
        case SSL_ERROR_WANT_READ:
            if let failure = transport.failure { return .transportFailed(failure) }
            return transport.reachedEndOfStream ? .endOfStream : .wantRead
        case SSL_ERROR_ZERO_RETURN:
            return .closedByPeer
        case SSL_ERROR_SYSCALL where transport.failure != nil:
            OpenSSLErrorQueue.clear()
            return .transportFailed(transport.failure!)
        default:
            // A TLS failure says more than the socket error its alert may have met.
            let entries = OpenSSLErrorQueue.drain()
            return .failed(TLSError.from(entries, verifyResult: SSL_get_verify_result(pointer), operation: operation))
        }
    }
}

import COpenSSL

/// One OpenSSL `SSL` (owned here) driven through two memory BIOs: ciphertext
/// from the socket goes in with ``feed(_:)``, ciphertext for the socket comes
/// out of ``takeOutput()``. It never touches a descriptor, so the event loop
/// and back-pressure stay in ``Connection``.
///
/// Not thread-safe: ``TLSConnection`` calls it under its lock, and drains the
/// OpenSSL error queue before releasing the lock (the queue is per thread and
/// a task may resume on another thread after an `await`).
final class SSLSession {
    enum Step {
        case progressed(Int)
        case wantRead
        case closedByPeer
        case failed(TLSError)
    }

    let pointer: OpaquePointer
    private let inbound: OpaquePointer  // owned by `pointer` after SSL_set_bio
    private let outbound: OpaquePointer // owned by `pointer` after SSL_set_bio

    init(context: TLSContext) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.pointer) else {
            throw .failed(operation: "SSL_new", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
        }
        guard let inbound = BIO_new(BIO_s_mem()), let outbound = BIO_new(BIO_s_mem()) else {
            preconditionFailure("BIO_new(BIO_s_mem()) failed: out of memory")
        }
        // An empty inbound BIO means "wait for more", not end of stream.
        _ = shoal_BIO_set_mem_eof_return(inbound, -1)
        SSL_set_bio(ssl, inbound, outbound)
        switch context.side {
        case .server: SSL_set_accept_state(ssl)
        case .client: SSL_set_connect_state(ssl)
        }
        self.pointer = ssl
        self.inbound = inbound
        self.outbound = outbound
    }

    deinit {
        SSL_free(pointer) // frees both BIOs too
    }

    /// Hands ciphertext read from the socket to OpenSSL.
    func feed(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { feed($0) }
    }

    func feed(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        let written = BIO_write(inbound, bytes.baseAddress, Int32(bytes.count))
        precondition(written == Int32(bytes.count), "memory BIO accepted \(written) of \(bytes.count) bytes")
    }

    /// An upper bound on the plaintext the next reads can return without
    /// more input: decrypted bytes OpenSSL holds plus the ciphertext waiting
    /// in the inbound BIO (a record's plaintext is never longer than it).
    var readableBytesBound: Int {
        Int(SSL_pending(pointer)) + shoal_BIO_ctrl_pending(inbound)
    }

    /// Ciphertext bytes waiting in the outbound BIO.
    var pendingOutputBytes: Int { shoal_BIO_ctrl_pending(outbound) }

    /// Moves up to `buffer.count` bytes of output into `buffer`; returns the count.
    func takeOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard !buffer.isEmpty else { return 0 }
        return max(0, Int(BIO_read(outbound, buffer.baseAddress, Int32(clamping: buffer.count))))
    }

    /// Ciphertext OpenSSL produced for the peer, in order.
    func takeOutput() -> [UInt8] {
        let pending = shoal_BIO_ctrl_pending(outbound)
        guard pending > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: pending) { buffer, count in
            let read = BIO_read(outbound, buffer.baseAddress, Int32(pending))
            count = max(0, Int(read))
        }
    }

    func handshake() -> Step {
        OpenSSLErrorQueue.clear()
        let result = SSL_do_handshake(pointer)
        return result == 1 ? .progressed(0) : classify(result, operation: "handshake")
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Step {
        OpenSSLErrorQueue.clear()
        var count = 0
        let result = SSL_read_ex(pointer, buffer.baseAddress, buffer.count, &count)
        return result == 1 ? .progressed(count) : classify(result, operation: "read")
    }

    func write(_ bytes: ArraySlice<UInt8>) -> Step {
        OpenSSLErrorQueue.clear()
        var count = 0
        let result = bytes.withUnsafeBytes { SSL_write_ex(pointer, $0.baseAddress, $0.count, &count) }
        return result == 1 ? .progressed(count) : classify(result, operation: "write")
    }

    /// Queues our close_notify.
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
            return .wantRead
        case SSL_ERROR_ZERO_RETURN:
            return .closedByPeer
        default:
            let entries = OpenSSLErrorQueue.drain()
            return .failed(TLSError.from(entries, verifyResult: SSL_get_verify_result(pointer), operation: operation))
        }
    }
}
